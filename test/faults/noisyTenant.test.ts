import { expect } from 'chai';
import { createAccount, type TestAccount } from '../support/factories.js';
import { startApi, spawnWorker, waitFor, workerReady, type ApiHarness, type WorkerProcess } from '../support/harness.js';

/**
 * One tenant's hostile tool schemas must not stall anyone else (issue: a backtracking `pattern`
 * froze a worker for 61 s; a 100,000-value `enum` held the api's event loop for 64 s). An api in
 * this process, a worker in its own; one account attacks while another's runs and /healthz are timed.
 */
describe('fault: one tenant’s hostile tool schemas do not stall the others', function () {
  this.timeout(180_000);
  let api: ApiHarness;
  let worker: WorkerProcess;
  let url: string;
  let mallory: TestAccount;
  let bob: TestAccount;

  before(async () => {
    api = startApi({ ACCOUNT_MAX_ACTIVE_RUNS: '1000', RATE_LIMIT_PER_MINUTE: '100000' });
    worker = spawnWorker(api.prefix, { WORKER_CONCURRENCY: '4', LOCAL_MODEL_DELAY_MS: '5', RUN_LOCK_MS: '4000' });
    await workerReady(worker);
    url = await api.url();
    mallory = await createAccount(api.deps.db);
    bob = await createAccount(api.deps.db);
  });
  after(async () => {
    worker.child.kill('SIGKILL');
    await worker.stopped;
    await api.close();
  });

  const post = (key: string, body: unknown) =>
    fetch(`${url}/api/chat/runs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  /** Posts a plain run and waits for it to complete; its time from POST to completed. */
  async function timedRun(key: string): Promise<number> {
    const started = Date.now();
    const res = await post(key, { prompt: 'one two three four five six' });
    expect(res.status).to.equal(202);
    const { runId } = (await res.json()) as { runId: string };
    await waitFor(async () => (await api.deps.db.run.findUnique({ where: { id: runId } }))?.status === 'completed', {
      what: `bob's run ${runId} to complete`,
      timeoutMs: 120_000,
      intervalMs: 20,
    });
    return Date.now() - started;
  }

  it('keeps another account’s runs and /healthz at their usual times while one posts a backtracking pattern and a huge enum', async () => {
    const usual: number[] = [];
    for (let i = 0; i < 3; i++) usual.push(await timedRun(bob.key));

    const backtracking = {
      prompt: `call t {"s":"${'a'.repeat(32)}!"}`,
      tools: [{ name: 't', inputSchema: { type: 'object', properties: { s: { type: 'string', pattern: '^(a+)+$' } } } }],
    };
    const hugeEnum = {
      prompt: 'hi',
      tools: [{ name: 'e', inputSchema: { type: 'object', properties: { s: { enum: Array.from({ length: 100_000 }, (_, i) => `v${i}`) } } } }],
    };
    const attack = Promise.all([
      ...Array.from({ length: 4 }, () => post(mallory.key, backtracking)),
      ...Array.from({ length: 3 }, () => post(mallory.key, hugeEnum)),
    ]);
    const healthz: number[] = [];
    const pollHealth = (async () => {
      for (let i = 0; i < 20; i++) {
        const started = Date.now();
        expect((await fetch(`${url}/healthz`)).status).to.equal(200);
        healthz.push(Date.now() - started);
      }
    })();
    const during: number[] = [];
    for (let i = 0; i < 5; i++) during.push(await timedRun(bob.key));
    const answers = await attack;
    await pollHealth;

    expect(
      answers.slice(0, 4).map((res) => res.status),
      'the backtracking runs are accepted',
    ).to.deep.equal([202, 202, 202, 202]);
    const refused = await Promise.all(answers.slice(4).map(async (res) => [res.status, ((await res.json()) as { error: string }).error]));
    expect(refused, 'the huge enums are refused').to.deep.equal(Array(3).fill([400, 'invalid_tool_schema']));
    // Before the fix these took over 60 s; the margins are wide for a loaded 2-core machine.
    const allowed = Math.max(5_000, 5 * Math.max(...usual));
    expect(Math.max(...during), `bob's runs during the attack (ms: ${during.join(', ')}; usual ${usual.join(', ')})`).to.be.below(allowed);
    expect(Math.max(...healthz), `/healthz during the attack (ms: ${healthz.join(', ')})`).to.be.below(2_000);
    // Mallory's runs end too: the hostile input is an input error the model sees, not a frozen worker.
    const malloryRuns = await api.deps.db.run.findMany({ where: { accountId: mallory.accountId } });
    expect(malloryRuns).to.have.length(4);
    await waitFor(async () => (await api.deps.db.run.count({ where: { accountId: mallory.accountId, status: 'completed' } })) === 4, {
      what: 'mallory’s runs to complete',
    });
    expect(worker.output(), 'the worker never lost a lock').not.to.match(/could not renew lock|job stalled/);
  });
});
