import { expect } from 'chai';
import request from 'supertest';
import { startApi, spawnWorker, waitFor, workerReady, type ApiHarness, type WorkerProcess } from '../support/harness.js';
import { createAccount, type TestAccount } from '../support/factories.js';
import { startRunOk, waitForRunStatus } from '../support/runs.js';
import { chunkTypes, finalText, storedEvents } from '../support/streams.js';

const words = (n: number) => Array.from({ length: n }, (_, i) => `word${i}`).join(' ');

describe('the worker fleet (spawned worker processes)', function () {
  this.timeout(90_000);
  let api: ApiHarness;
  let alice: TestAccount;
  const workers: WorkerProcess[] = [];

  const spawn = (overrides: Record<string, string> = {}) => {
    const worker = spawnWorker(api.prefix, { RUN_LOCK_MS: '2000', LOCAL_MODEL_DELAY_MS: '100', WORKER_CONCURRENCY: '4', ...overrides });
    workers.push(worker);
    return worker;
  };
  const pidOf = (worker: WorkerProcess) => worker.child.pid!;

  beforeEach(async () => {
    api = startApi();
    alice = await createAccount(api.deps.db);
  });
  afterEach(async () => {
    for (const worker of workers.splice(0)) {
      if (worker.child.exitCode === null && worker.child.signalCode === null) {
        worker.child.kill('SIGCONT');
        worker.child.kill('SIGKILL');
      }
      await worker.stopped;
    }
    await api.close();
  });

  const runningOn = async (runId: string) =>
    waitFor(
      async () => {
        const run = await api.deps.db.run.findUnique({ where: { id: runId } });
        const deltas = (await storedEvents(api.deps.redis, api.prefix, runId)).filter((e) => e.chunk?.type === 'text-delta').length;
        return run?.status === 'running' && deltas >= 2 ? run : null;
      },
      { what: 'the run to be streaming', timeoutMs: 20_000 },
    );

  it('after kill -9 of the worker mid-stream, another worker completes the run and cleanup runs once', async () => {
    const [a, b] = [spawn(), spawn()];
    await Promise.all([workerReady(a), workerReady(b)]);
    const runId = await startRunOk(api.app, alice.key, { prompt: words(30) });
    const run = await runningOn(runId);
    const victim = run.workerId!.endsWith(`:${pidOf(a)}`) ? a : b;
    const killedAt = Date.now();
    victim.child.kill('SIGKILL');
    const done = await waitForRunStatus(api.deps, runId, ['completed'], 30_000);
    console.log(`      (kill -9 to completed elsewhere: ${Date.now() - killedAt} ms)`);
    expect(done.attempt).to.equal(2);
    expect(done.workerId).to.not.equal(run.workerId);
    const messages = await api.deps.db.message.findMany({ where: { runId, role: 'assistant' } });
    expect(messages.map((m) => m.attempt)).to.deep.equal([2]);
    const attempts = await api.deps.db.runAttempt.findMany({ where: { runId }, orderBy: { attempt: 'asc' } });
    expect(attempts.map((x) => x.status)).to.deep.equal(['interrupted', 'completed']);
    expect(finalText(await storedEvents(api.deps.redis, api.prefix, runId))).to.equal(words(30));
    await waitFor(() => api.deps.db.cleanupRecord.count({ where: { runId } }));
    expect(await api.deps.db.cleanupRecord.count({ where: { runId } })).to.equal(1);
    expect(await api.deps.db.apiKey.count({ where: { runId, revokedAt: null } })).to.equal(0);
  });

  it('fences a frozen worker: another takes over and finishes, and the first one’s late writes are rejected', async () => {
    const a = spawn({ WORKER_CONCURRENCY: '1' });
    await workerReady(a);
    const runId = await startRunOk(api.app, alice.key, { prompt: words(25) });
    await runningOn(runId);
    a.child.kill('SIGSTOP'); // a paused or partitioned worker: alive, but silent
    const b = spawn({ WORKER_CONCURRENCY: '1' });
    await workerReady(b);
    await waitFor(async () => (await api.deps.db.run.findUnique({ where: { id: runId } }))?.attempt === 2, { what: 'the takeover', timeoutMs: 30_000 });
    a.child.kill('SIGCONT'); // the zombie wakes up mid-stream and carries on
    const done = await waitForRunStatus(api.deps, runId, ['completed'], 30_000);
    await waitFor(() => a.output().includes('lost ownership'), { what: 'the zombie to notice', timeoutMs: 20_000 });
    expect(done.attempt).to.equal(2);
    const messages = await api.deps.db.message.findMany({ where: { runId, role: 'assistant' } });
    expect(
      messages.map((m) => m.attempt),
      'one assistant message, from the attempt that owned the run',
    ).to.deep.equal([2]);
    const stream = await storedEvents(api.deps.redis, api.prefix, runId);
    const takeover = stream.findIndex((e) => e.chunk?.type === 'data-attempt');
    const lateZombieEvents = stream.slice(takeover).filter((e) => e.chunk?.id === 'text-1');
    expect(lateZombieEvents, 'no attempt-1 event after the takeover').to.deep.equal([]);
    expect(finalText(stream)).to.equal(words(25));
    expect(chunkTypes(stream).filter((t) => t === '[DONE]')).to.have.length(1);
  });

  it('ends a run cancelled when the cancel arrived while its worker was frozen: the next worker to meet it ends it, once', async () => {
    const a = spawn({ WORKER_CONCURRENCY: '1' });
    await workerReady(a);
    const runId = await startRunOk(api.app, alice.key, { prompt: words(40) });
    await runningOn(runId);
    a.child.kill('SIGSTOP'); // frozen: it never hears the cancel
    const cancel = await request(api.app).post(`/api/chat/runs/${runId}/cancel`).set('authorization', `Bearer ${alice.key}`);
    expect(cancel.status).to.equal(202);
    const b = spawn({ WORKER_CONCURRENCY: '1', RUN_STALE_AFTER_MS: '3000', RUN_SWEEP_EVERY_MS: '1000' });
    await workerReady(b);
    const ended = await waitForRunStatus(api.deps, runId, ['cancelled', 'completed', 'failed'], 30_000);
    expect(ended.status).to.equal('cancelled');
    a.child.kill('SIGCONT'); // the frozen worker wakes up: its late writes are refused
    await waitFor(() => a.output().includes('lost ownership'), { what: 'the frozen worker to notice', timeoutMs: 20_000 });
    expect((await api.deps.db.run.findUnique({ where: { id: runId } }))!.status).to.equal('cancelled');
    await waitFor(() => api.deps.db.cleanupRecord.count({ where: { runId } }));
    expect(await api.deps.db.cleanupRecord.count({ where: { runId } }), 'cleaned up once').to.equal(1);
    expect(await api.deps.db.apiKey.count({ where: { runId, revokedAt: null } })).to.equal(0);
    expect(await api.deps.db.openRun.count({ where: { runId } }), 'no longer active').to.equal(0);
    const stream = await storedEvents(api.deps.redis, api.prefix, runId);
    expect(
      chunkTypes(stream).filter((t) => t === '[DONE]'),
      'the stream ended once',
    ).to.have.length(1);
  });

  it('on SIGTERM lets a run go within the grace period and another worker completes it', async () => {
    const a = spawn({ SHUTDOWN_GRACE_MS: '300' });
    await workerReady(a);
    const runId = await startRunOk(api.app, alice.key, { prompt: words(40) });
    await runningOn(runId);
    const stoppedAt = Date.now();
    a.child.kill('SIGTERM');
    const code = await a.stopped;
    expect(code).to.equal(0);
    expect(Date.now() - stoppedAt).to.be.below(10_000);
    const b = spawn();
    await workerReady(b);
    const done = await waitForRunStatus(api.deps, runId, ['completed'], 30_000);
    expect(done.attempt).to.equal(2);
    const attempts = await api.deps.db.runAttempt.findMany({ where: { runId }, orderBy: { attempt: 'asc' } });
    expect(attempts.map((x) => [x.status, x.errorCode])).to.deep.equal([
      ['interrupted', 'worker_shutdown'],
      ['completed', null],
    ]);
  });

  it('two workers sharing a queue never run one job twice', async () => {
    const [a, b] = [spawn({ LOCAL_MODEL_DELAY_MS: '10' }), spawn({ LOCAL_MODEL_DELAY_MS: '10' })];
    await Promise.all([workerReady(a), workerReady(b)]);
    const runIds = await Promise.all(Array.from({ length: 24 }, (_, i) => startRunOk(api.app, alice.key, { prompt: `${words(8)} ${i}` })));
    await Promise.all(runIds.map((runId) => waitForRunStatus(api.deps, runId, ['completed'], 40_000)));
    const attempts = await api.deps.db.runAttempt.groupBy({ by: ['runId'], where: { runId: { in: runIds } }, _count: true });
    expect(attempts.every((row) => row._count === 1)).to.equal(true);
    const messages = await api.deps.db.message.groupBy({ by: ['runId'], where: { runId: { in: runIds }, role: 'assistant' }, _count: true });
    expect(messages).to.have.length(24);
    expect(messages.every((row) => row._count === 1)).to.equal(true);
    const workersUsed = new Set((await api.deps.db.run.findMany({ where: { id: { in: runIds } }, select: { workerId: true } })).map((r) => r.workerId));
    expect(workersUsed.size).to.equal(2);
  });
});
