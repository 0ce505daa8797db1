import { expect } from 'chai';
import { emptyUsage } from '../../shared/agent/models.js';
import { RunStore, type BegunAttempt } from '../../worker/attempt/runStore.js';
import { startApi, type ApiHarness } from '../support/harness.js';
import { createAccount } from '../support/factories.js';
import { startRunOk } from '../support/runs.js';

/** The worker's batched run-state writes, against Postgres, with no queue in between. */
describe('the worker’s run store (batched statements)', () => {
  let api: ApiHarness;

  before(() => {
    api = startApi({ ACCOUNT_MAX_ACTIVE_RUNS: '1000' });
  });
  after(() => api.close());

  const output = (text: string) => ({
    parts: [{ type: 'text' as const, text }],
    steps: 1,
    finishReason: 'stop',
    model: 'local/echo',
    usage: emptyUsage(),
    costMicros: 5n,
    runtimeMs: 3,
    providerResponseId: `r-${text}`,
    interrupted: false,
    uncharged: { tokens: 0, spendMicros: null },
    contextTokens: null,
  });

  it('claims and completes many runs of several accounts at once, each with its own answer and cleanup', async () => {
    const { db } = api.deps;
    const store = new RunStore(api.deps.sql, 'batch-worker', { maxBatch: 50, concurrency: 1 });
    const accounts = await Promise.all([createAccount(db), createAccount(db), createAccount(db)]);
    const runIds: string[] = [];
    for (let i = 0; i < 24; i++) runIds.push(await startRunOk(api.app, accounts[i % 3]!.key, { prompt: `question ${i}` }));

    // Submitted in one turn: the first goes alone, the rest share a statement.
    const begun = await Promise.all(runIds.map((runId) => store.begin(runId)));
    begun.forEach((b, i) => {
      expect(b?.run.id).to.equal(runIds[i]);
      expect(b?.run.attempt).to.equal(1);
      expect(b?.chat.current.map(({ role, parts }) => ({ role, parts }))).to.deep.equal([{ role: 'user', parts: [{ type: 'text', text: `question ${i}` }] }]);
      expect(b?.chat.earlier).to.deep.equal([]);
    });
    expect(await db.openRun.count({ where: { runId: { in: runIds } } }), 'open until cleaned up').to.equal(runIds.length);
    // A second claim of the same run in the same turn is a new attempt, never the same answer twice.
    const [again, andAgain] = await Promise.all([store.begin(runIds[0]!), store.begin(runIds[0]!)]);
    expect([again!.run.attempt, andAgain!.run.attempt].sort()).to.deep.equal([2, 3]);

    // Every run finishes in the same turn; the first run's attempt 1 was fenced off by attempts 2 and 3.
    const saved = await Promise.all(
      (begun as BegunAttempt[]).map((b, i) =>
        store.finish({ run: i === 0 ? andAgain!.run : b.run, status: i % 4 === 3 ? 'cancelled' : 'completed', output: output(`answer ${i}`) }),
      ),
    );
    const stale = await store.finish({ run: begun[0]!.run, status: 'completed', output: output('too late') });
    expect(saved.every(Boolean)).to.equal(true);
    expect(stale).to.equal(false);

    const runs = await db.run.findMany({ where: { id: { in: runIds } }, include: { messages: true, cleanups: true } });
    for (const run of runs) {
      const i = runIds.indexOf(run.id);
      expect(run.status).to.equal(i % 4 === 3 ? 'cancelled' : 'completed');
      const answers = run.messages.filter((m) => m.role === 'assistant');
      expect(answers.map((m) => m.parts)).to.deep.equal([[{ type: 'text', text: `answer ${i}` }]]);
      expect(answers[0]!.costMicros).to.equal(5n);
      expect(run.cleanups).to.have.length(1);
      expect(run.cleanups[0]!.reason).to.equal(run.status);
    }
    expect(await db.apiKey.count({ where: { runId: { in: runIds }, revokedAt: null } })).to.equal(0);
    expect(await db.openRun.count({ where: { runId: { in: runIds } } }), 'closed by the cleanup').to.equal(0);
    expect(await db.session.count({ where: { runs: { some: { id: { in: runIds } } }, status: 'open' } })).to.equal(0);
    for (const account of accounts) {
      const [slots] = await db.$queryRaw<{ sum: bigint | null }[]>`SELECT sum(active) FROM account_active_runs WHERE account_id = ${account.accountId}::uuid`;
      expect(Number(slots!.sum)).to.equal(0);
    }
  });

  it('answers null for a run that cannot be claimed, without holding up the others in its batch', async () => {
    const { db } = api.deps;
    const store = new RunStore(api.deps.sql, 'batch-worker-2', { maxBatch: 50, concurrency: 1 });
    const alice = await createAccount(db);
    const runnable = await startRunOk(api.app, alice.key, { prompt: 'go' });
    const cancelled = await startRunOk(api.app, alice.key, { prompt: 'stop' });
    await db.run.update({ where: { id: cancelled }, data: { status: 'cancelled' } });
    const missing = '00000000-0000-4000-8000-000000000000';
    const [first, a, b, c] = await Promise.all([store.begin(runnable), store.begin(cancelled), store.begin(missing), store.begin(runnable)]);
    expect(first?.run.attempt).to.equal(1);
    expect([a, b]).to.deep.equal([null, null]);
    expect(c?.run.attempt).to.equal(2);
    expect(await store.state(missing)).to.equal(null);
    expect((await store.state(cancelled))?.status).to.equal('cancelled');
  });
});
