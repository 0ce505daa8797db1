import { expect } from 'chai';
import request from 'supertest';
import { runQueueName } from '../../shared/infra/queue.js';
import { startApi, spawnWorker, waitFor, workerReady, type ApiHarness, type WorkerProcess } from '../support/harness.js';
import { createAccount } from '../support/factories.js';
import { masterServing, startRedisCluster, type LocalRedisCluster } from '../../scripts/localRedisCluster.js';
import { startRunOk, waitForRunStatus } from '../support/runs.js';
import { storedEvents } from '../support/streams.js';
import { expectEveryRunSettled, postFor } from './support.js';

const SHARDS = 3;
const words = (n: number) => Array.from({ length: n }, (_, i) => `w${i}`).join(' ');

const env = (nodes: string) => ({
  REDIS_CLUSTER_NODES: nodes,
  QUEUE_SHARDS: String(SHARDS),
  RUN_LOCK_MS: '2000',
  LOCAL_MODEL_DELAY_MS: '40',
  RUN_STALE_AFTER_MS: '3000',
  RUN_SWEEP_EVERY_MS: '1000',
  RUN_MAX_ATTEMPTS: '5',
  ACCOUNT_MAX_ACTIVE_RUNS: '1000',
  WORKER_CONCURRENCY: '40',
  RATE_LIMIT_PER_MINUTE: '100000',
});

describe('fault: on a Redis Cluster', function () {
  this.timeout(240_000);
  let cluster: LocalRedisCluster;
  let api: ApiHarness;
  let workers: WorkerProcess[] = [];

  before(async () => {
    cluster = await startRedisCluster();
    api = startApi(env(cluster.nodes));
    workers = [spawnWorker(api.prefix, env(cluster.nodes)), spawnWorker(api.prefix, env(cluster.nodes))];
    await Promise.all(workers.map((worker) => workerReady(worker)));
  });
  after(async () => {
    for (const worker of workers) worker.child.kill('SIGKILL');
    await Promise.all(workers.map((worker) => worker.stopped));
    await api?.close();
    await cluster?.close();
  });

  it('after kill -9 of a worker mid-stream, the other completes the run with one answer', async () => {
    const alice = await createAccount(api.deps.db);
    const runId = await startRunOk(api.app, alice.key, { prompt: words(60) });
    const running = await waitFor(
      async () => {
        const run = await api.deps.db.run.findUnique({ where: { id: runId } });
        const deltas = (await storedEvents(api.deps.redis, api.prefix, runId)).filter((e) => e.chunk?.type === 'text-delta').length;
        return run?.status === 'running' && deltas >= 2 ? run : null;
      },
      { what: 'the run to be streaming', timeoutMs: 20_000 },
    );
    const victim = workers.find((worker) => running.workerId!.endsWith(`:${worker.child.pid}`))!;
    victim.child.kill('SIGKILL');
    await victim.stopped;
    const done = await waitForRunStatus(api.deps, runId, ['completed'], 60_000);
    expect(done.attempt).to.equal(2);
    const answers = await api.deps.db.message.findMany({ where: { runId, role: 'assistant' } });
    expect(answers.map((m) => m.attempt)).to.deep.equal([2]);
    const replacement = spawnWorker(api.prefix, env(cluster.nodes));
    workers = [...workers.filter((worker) => worker !== victim), replacement];
    await workerReady(replacement);
  });

  it('a master killed under load (60 runs in flight): 503s not hangs, workers reconnect, every run that got a 202 ends terminal', async () => {
    const alice = await createAccount(api.deps.db);
    const accepted: string[] = [];
    const statuses: number[] = [];
    const prompt = words(20); // ~1 s a run: with 4 posting loops, some 60 runs in flight
    const load = (ms: number) => Promise.all(Array.from({ length: 4 }, () => postFor(api, alice.key, ms, accepted, statuses, prompt)));

    await load(3_000);
    const inFlight = await api.deps.db.run.count({ where: { id: { in: accepted }, status: { in: ['queued', 'running'] } } });
    const members = await cluster.members();
    // The master of the first queue shard: its jobs, and the run keys in its slots, are at stake.
    const victim = masterServing(members, `${api.prefix}:${runQueueName(0, SHARDS, true)}:wait`);
    const replica = members.find((m) => m.masterId === victim.id)!;
    await Promise.all([load(8_000), cluster.kill(victim.port)]);
    await cluster.waitHealthy(60_000);
    const promoted = (await cluster.members()).find((m) => m.id === replica.id)!;
    expect(promoted.role, 'the replica took over').to.equal('master');

    const afterFailover = accepted.length;
    await load(2_000);
    console.log(
      `      (${inFlight} runs in flight at the kill; ${accepted.length} accepted, ${statuses.filter((s) => s === 503).length} answered 503, ${accepted.length - afterFailover} accepted after the failover)`,
    );
    expect(accepted.length, 'runs accepted after the failover').to.be.greaterThan(afterFailover);
    expect(inFlight, 'runs in flight when the master died').to.be.at.least(20);
    await expectEveryRunSettled(api.deps, accepted, 120_000);
    const completed = await api.deps.db.run.count({ where: { id: { in: accepted }, status: 'completed' } });
    const retried = await api.deps.db.run.count({ where: { id: { in: accepted }, attempt: { gt: 1 } } });
    const failures = await api.deps.db.run.groupBy({ by: ['errorCode'], where: { id: { in: accepted }, status: 'failed' }, _count: true });
    console.log(`      (${completed} completed, ${retried} needed another attempt, failures: ${JSON.stringify(failures)})`);
    expect(completed / accepted.length, `${completed} of ${accepted.length} completed`).to.be.at.least(0.95);
    expect((await request(api.app).get('/readyz')).status).to.equal(200);
  });
});
