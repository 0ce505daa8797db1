import { expect } from 'chai';
import request from 'supertest';
import { createAccount } from '../support/factories.js';
import { startApi, spawnWorker, waitFor, workerReady, type ApiHarness, type WorkerProcess } from '../support/harness.js';
import { startRunOk } from '../support/runs.js';
import { killRandomWorkers } from './support.js';

const words = (n: number, tag: string) => Array.from({ length: n }, (_, i) => `${tag}w${i}`).join(' ');

/**
 * Queued messages of a chat become runs in order, each exactly once, also when the worker that ends
 * the previous run (and so hands the chat over to its next message) dies at that moment.
 */
describe('fault: workers killed while chats hand over to their queued messages', function () {
  this.timeout(240_000);
  let api: ApiHarness;
  const workers: WorkerProcess[] = [];
  const env: Record<string, string> = {
    RUN_LOCK_MS: '2000',
    LOCAL_MODEL_DELAY_MS: '30',
    WORKER_CONCURRENCY: '4',
    RUN_STALE_AFTER_MS: '4000',
    RUN_SWEEP_EVERY_MS: '1000',
    RUN_MAX_STALLS: '10',
    RUN_MAX_ATTEMPTS: '10',
  };

  before(() => {
    api = startApi({ ACCOUNT_MAX_ACTIVE_RUNS: '1000', CHAT_MAX_QUEUED_MESSAGES: '50' });
  });
  after(async () => {
    for (const worker of workers) worker.child.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.stopped));
    await api.close();
  });

  it('kill -9 of the worker as its run ends: the next queued message still becomes a run, exactly once', async () => {
    const alice = await createAccount(api.deps.db);
    const auth = { authorization: `Bearer ${alice.key}` };
    const first = spawnWorker(api.prefix, env);
    workers.push(first);
    await workerReady(first);
    const runId = await startRunOk(api.app, alice.key, { prompt: words(20, 'a') });
    const { chatId } = (await api.deps.db.run.findUniqueOrThrow({ where: { id: runId } }))!;
    const queued = await request(api.app).post(`/api/chats/${chatId}/messages`).set(auth).send({ prompt: 'next please' });
    expect(queued.body.queued).to.equal(true);
    // The moment the run is over, its worker dies: the promoted run is in Postgres, its job maybe not queued.
    await waitFor(async () => (await api.deps.db.run.findUnique({ where: { id: runId } }))?.status === 'completed', { intervalMs: 5, timeoutMs: 30_000 });
    first.child.kill('SIGKILL');
    await first.stopped;
    const second = spawnWorker(api.prefix, env);
    workers.push(second);
    await workerReady(second);
    await waitFor(async () => (await api.deps.db.run.count({ where: { chatId, status: 'completed' } })) === 2, {
      what: 'the queued message’s run',
      timeoutMs: 60_000,
    });
    expect(await api.deps.db.run.count({ where: { queuedMessageId: queued.body.queuedMessageId } })).to.equal(1);
  });

  it('3 chats, 8 queued messages each, a random worker killed every second: every message becomes one run, in order', async () => {
    for (let i = workers.length; i < 3; i++) workers.push(spawnWorker(api.prefix, env));
    await Promise.all(workers.map((w) => (w.child.exitCode === null ? workerReady(w) : Promise.resolve())));
    for (const [i, w] of workers.entries()) if (w.child.exitCode !== null || w.child.signalCode !== null) workers[i] = spawnWorker(api.prefix, env);
    const bob = await createAccount(api.deps.db);
    const auth = { authorization: `Bearer ${bob.key}` };
    const chats: { chatId: string; sent: string[] }[] = [];
    for (let c = 0; c < 3; c++) {
      const runId = await startRunOk(api.app, bob.key, { prompt: words(12, `c${c}m0`) });
      const { chatId } = (await api.deps.db.run.findUniqueOrThrow({ where: { id: runId } }))!;
      const sent = [words(12, `c${c}m0`)];
      for (let m = 1; m <= 8; m++) {
        const prompt = words(12, `c${c}m${m}`);
        const res = await request(api.app).post(`/api/chats/${chatId}/messages`).set(auth).send({ prompt });
        expect(res.status).to.equal(202);
        sent.push(prompt);
      }
      chats.push({ chatId, sent });
    }
    const done = async () => (await api.deps.db.queuedMessage.count({ where: { chatId: { in: chats.map((c) => c.chatId) } } })) === 0;
    const kills = await killRandomWorkers(workers, () => spawnWorker(api.prefix, env), { everyMs: 1_000, forMs: 12_000, done });
    await Promise.all(workers.map((w) => workerReady(w)));
    for (const { chatId, sent } of chats) {
      await waitFor(
        async () =>
          (await api.deps.db.run.count({ where: { chatId, status: { in: ['completed', 'failed', 'cancelled'] } } })) === sent.length &&
          (await api.deps.db.queuedMessage.count({ where: { chatId } })) === 0,
        { what: `chat ${chatId} to run every message`, timeoutMs: 150_000 },
      );
      const runs = await api.deps.db.run.findMany({ where: { chatId }, orderBy: { seq: 'asc' }, include: { messages: { where: { role: 'user' } } } });
      expect(runs.length, 'one run per message').to.equal(sent.length);
      const prompts = runs.map((run) => (run.messages[0]!.parts as { text: string }[])[0]!.text);
      expect(prompts, 'in the order they were sent').to.deep.equal(sent);
      expect(runs.filter((run) => run.status === 'completed').length, 'killing workers loses no run').to.be.at.least(sent.length - 1);
    }
    console.log(`      (${kills} kills)`);
  });
});
