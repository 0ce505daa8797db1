import { expect } from 'chai';
import { createAccount } from '../support/factories.js';
import { spawnWorker, startApi, startWorker, waitFor, workerReady, type ApiHarness, type WorkerProcess } from '../support/harness.js';
import { postRun } from '../support/runs.js';

/**
 * Retention erases each chat in its own transaction (SPEC section 17): a worker killed with kill -9
 * in the middle of a prune leaves every chat whole or gone — never a chat without its runs, or runs
 * without their messages — and the next pass finishes the job.
 */
describe('fault: kill -9 of the worker in the middle of a prune', function () {
  this.timeout(180_000);
  let api: ApiHarness;
  const workers: WorkerProcess[] = [];
  after(async () => {
    for (const worker of workers) worker.child.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.stopped));
    await api?.close();
  });

  it('every chat is whole or gone, and the next pass erases the rest', async () => {
    api = startApi({ ACCOUNT_MAX_ACTIVE_RUNS: '10000', RETENTION_DAYS: '30' });
    const { db } = api.deps;
    const alice = await createAccount(db);
    // 600 finished chats of two turns (a run each), made by an in-process worker, then aged past retention.
    const filler = await startWorker(api.prefix, { WORKER_CONCURRENCY: '32' });
    const posted = await Promise.all(Array.from({ length: 600 }, (_, i) => postRun(api.app, alice.key, { prompt: `chat number ${i}` })));
    const runIds = posted.map((res) => res.body.runId as string);
    await waitFor(async () => (await db.run.count({ where: { id: { in: runIds }, status: 'completed' } })) === runIds.length, {
      timeoutMs: 120_000,
      what: 'the 600 runs',
    });
    await filler.close(1_000);
    const chats = await db.run.findMany({ where: { id: { in: runIds } }, select: { chatId: true, id: true, sessionId: true } });
    const chatIds = chats.map((c) => c.chatId);
    const aged = new Date(Date.now() - 40 * 86_400_000);
    await db.$executeRaw`UPDATE chats SET last_activity_at = ${aged} WHERE id = ANY(${chatIds}::uuid[])`;
    await db.$executeRaw`UPDATE runs SET finished_at = ${aged} WHERE id = ANY(${runIds}::uuid[])`;

    // A worker whose retention job runs at once; killed as soon as it has erased some but not all.
    const env = { RETENTION_DAYS: '30', RETENTION_EVERY_MS: '1000' };
    const pruner = spawnWorker(api.prefix, env);
    workers.push(pruner);
    await workerReady(pruner);
    await waitFor(async () => (await db.chat.count({ where: { id: { in: chatIds } } })) < chatIds.length, {
      timeoutMs: 30_000,
      intervalMs: 5,
      what: 'the prune to start',
    });
    pruner.child.kill('SIGKILL');
    await pruner.stopped;

    const remaining = new Set((await db.chat.findMany({ where: { id: { in: chatIds } }, select: { id: true } })).map((c) => c.id));
    console.log(`      (killed with ${remaining.size} of ${chatIds.length} chats left)`);
    expect(remaining.size, 'killed in the middle, not after the end').to.be.above(0);
    const runsLeft = await db.run.findMany({ where: { id: { in: runIds } }, select: { id: true, chatId: true } });
    const messagesLeft = await db.message.groupBy({ by: ['chatId'], where: { chatId: { in: chatIds } }, _count: true });
    const sessionsLeft = new Set((await db.session.findMany({ where: { id: { in: chats.map((c) => c.sessionId) } }, select: { id: true } })).map((s) => s.id));
    for (const chat of chats) {
      const whole = remaining.has(chat.chatId);
      const runs = runsLeft.filter((run) => run.chatId === chat.chatId).length;
      const messages = messagesLeft.find((m) => m.chatId === chat.chatId)?._count ?? 0;
      expect({ runs, messages, session: sessionsLeft.has(chat.sessionId) }, `chat ${chat.chatId} ${whole ? 'kept' : 'erased'}`).to.deep.equal(
        whole ? { runs: 1, messages: 2, session: true } : { runs: 0, messages: 0, session: false },
      );
    }

    const next = spawnWorker(api.prefix, env);
    workers.push(next);
    await workerReady(next);
    await waitFor(async () => (await db.chat.count({ where: { id: { in: chatIds } } })) === 0, { timeoutMs: 60_000, what: 'the next pass to finish' });
    expect(await db.message.count({ where: { runId: { in: runIds } } })).to.equal(0);
  });
});
