import { setMaxListeners } from 'node:events';
import { expect } from 'chai';
import request from 'supertest';
import { runQueueName } from '../../shared/infra/queue.js';
import { startApi, waitFor, type ApiHarness } from '../support/harness.js';
import { masterServing, startRedisCluster, type LocalRedisCluster } from '../../scripts/localRedisCluster.js';
import { mostAtOnce, postRun, startOrder, startRunOk, waitForRunStatus } from '../support/runs.js';
import { updateAccountSettings } from '../../shared/accounts/accountSettings.js';
import { assembledText, readSse } from '../support/sse.js';
import { startStack, type Stack } from '../support/stack.js';
import { createAccount } from '../support/factories.js';
import { expectOneBudgetAcrossShards } from '../support/queueShards.js';

const words = (n: number) => Array.from({ length: n }, (_, i) => `w${i}`).join(' ');
const SHARDS = 3;

describe('on a Redis Cluster (3 masters + 3 replicas started by the test)', function () {
  this.timeout(120_000);
  let cluster: LocalRedisCluster;
  let stack: Stack;
  let api: ApiHarness;
  let base: string;
  const auth = () => ({ authorization: `Bearer ${stack.alice.key}` });

  before(async () => {
    cluster = await startRedisCluster();
    stack = await startStack({ REDIS_CLUSTER_NODES: cluster.nodes, QUEUE_SHARDS: String(SHARDS), LOCAL_MODEL_DELAY_MS: '20', SSE_KEEPALIVE_MS: '200' });
    api = stack.api;
    base = await api.url();
  });
  after(async () => {
    await stack?.close();
    await cluster?.close();
  });

  it('starts and completes runs whose queues and keys are spread over every master', async () => {
    const runIds = await Promise.all(Array.from({ length: 24 }, (_, i) => startRunOk(api.app, stack.alice.key, { prompt: `run ${i} ${words(5)}` })));
    for (const runId of runIds) await waitForRunStatus(api.deps, runId, ['completed'], 30_000);
    for (const runId of runIds.slice(0, 3)) {
      const [message] = await api.deps.db.message.findMany({ where: { runId, role: 'assistant' } });
      expect(message, `run ${runId}'s answer`).to.exist;
    }

    const members = await cluster.members();
    const masters = members.filter((m) => m.role === 'master');
    expect(masters).to.have.length(3);
    // Each shard's hash tag is on its own master.
    const queueMasters = Array.from({ length: SHARDS }, (_, i) => masterServing(members, `${api.prefix}:${runQueueName(i, SHARDS, true)}:wait`).id);
    expect(new Set(queueMasters).size, 'one queue shard per master').to.equal(3);
    // The runs' own keys (event streams) landed on more than one master: counted on each master itself.
    const streamsPerMaster = await Promise.all(
      masters.map(async (master) => {
        const [, keys] = await cluster.node(master.port).scan('0', 'MATCH', `${api.prefix}:run:*:events`, 'COUNT', 100_000);
        return keys.length;
      }),
    );
    expect(streamsPerMaster.reduce((a, b) => a + b, 0)).to.equal(24);
    expect(streamsPerMaster.filter((count) => count > 0).length, `event streams per master: ${streamsPerMaster.join('/')}`).to.be.at.least(2);
    // Every shard's queue did work.
    const completedPerShard = await Promise.all(api.deps.runQueues.all.map((queue) => queue.getCompletedCount()));
    expect(
      completedPerShard.every((count) => count > 0),
      `completed jobs per shard: ${completedPerShard.join('/')}`,
    ).to.equal(true);
  });

  it('keeps an account within its maxRunning and starts its higher-priority runs first, whichever shard each run is on (SPEC section 15)', async () => {
    const capped = await createAccount(api.deps.db);
    await updateAccountSettings(api.deps, { id: capped.accountId, name: capped.accountId }, { maxRunning: 1 });
    const runIds: string[] = [];
    // The first one runs for a while (100 words at 20 ms): the rest are posted meanwhile and wait behind it.
    for (const [i, priority] of ['low', 'normal', 'high', 'low', 'normal', 'high'].entries())
      runIds.push(await startRunOk(api.app, capped.key, { prompt: `${priority} ${words(i === 0 ? 100 : 6)}`, priority }));
    for (const runId of runIds) await waitForRunStatus(api.deps, runId, ['completed'], 30_000);
    const order = await startOrder(api.deps.db, runIds);
    expect(new Set(runIds.map((runId) => api.deps.runQueues.forRun(runId).name)).size, 'the runs are on more than one shard').to.be.above(1);
    expect(mostAtOnce(order), 'running at once').to.equal(1);
    // The first run started at once; the rest waited behind it and started by priority.
    expect(order.slice(1).map((run) => run.priority)).to.deep.equal(['high', 'high', 'normal', 'normal', 'low']);
  });

  it('shows every shard in Bull Board and in the queue-depth metric', async () => {
    const admin = await createAccount(api.deps.db, ['admin']);
    const board = await request(api.app).get('/admin/queues/api/queues').set(admin.auth);
    expect(board.status).to.equal(200);
    const names = (board.body.queues as { name: string }[]).map((queue) => queue.name).sort();
    const shards = Array.from({ length: SHARDS }, (_, i) => runQueueName(i, SHARDS, true));
    expect(names).to.deep.equal([...shards, '{maintenance}'].sort());
    const metrics = await request(api.app).get('/metrics');
    for (const name of shards) expect(metrics.text).to.include(`runyard_queue_jobs{queue="${name}",state="completed",`);
  });

  it('streams a run live, and a client that drops resumes on a second api instance with nothing lost or repeated', async () => {
    const other = startApi({ ...stack.env, QUEUE_PREFIX: api.prefix });
    try {
      const otherBase = await other.url();
      const runId = await startRunOk(api.app, stack.alice.key, { prompt: words(40) });
      const first = await readSse(`${base}/api/chat/runs/${runId}/stream`, auth(), {
        until: (e) => e.data.includes('"text-delta"') && Number(JSON.parse(e.data).delta.trim().slice(1)) >= 5,
      });
      expect((await api.deps.db.run.findUniqueOrThrow({ where: { id: runId } })).status, 'the first client saw tokens while the run went on').to.equal(
        'running',
      );
      const rest = await readSse(`${otherBase}/api/chat/runs/${runId}/stream`, { ...auth(), 'last-event-id': first.events.at(-1)!.id! });
      const combined = [...first.events, ...rest.events];
      expect(combined.at(-1)!.data).to.equal('[DONE]');
      expect(new Set(combined.map((e) => e.id)).size).to.equal(combined.length);
      const whole = await readSse(`${base}/api/chat/runs/${runId}/stream`, auth());
      expect(combined).to.deep.equal(whole.events);
      expect(assembledText(combined)).to.equal(words(40));
    } finally {
      await other.close();
    }
  });

  it('holds no more Redis connections with 40 streams open than with 20: a subscriber and a command connection per node at most', async () => {
    const members = await cluster.members();
    const apiConnections = async () => {
      const lists = await Promise.all(members.map((m) => cluster.node(m.port).client('LIST') as Promise<string>));
      return lists
        .join('\n')
        .split('\n')
        .filter((line) => /\bname=\S*runyard-api(-sub)?(\s|$)/.test(line)).length;
    };
    const controller = new AbortController();
    setMaxListeners(100, controller.signal);
    const open = async (count: number, wave: string) => {
      const runIds = await Promise.all(Array.from({ length: count }, (_, i) => startRunOk(api.app, stack.alice.key, { prompt: `${wave} ${i} ${words(300)}` })));
      return {
        runIds,
        streams: runIds.map((runId) => readSse(`${base}/api/chat/runs/${runId}/stream`, auth(), { signal: controller.signal, timeoutMs: 60_000 })),
      };
    };
    const streamsOpen = (n: number) =>
      waitFor(async () => (await request(api.app).get('/metrics')).text.includes(`runyard_active_streams{process="api"} ${n}`), { what: `${n} open streams` });
    const first = await open(20, 'first');
    const second = { runIds: [] as string[], streams: [] as Promise<unknown>[] };
    try {
      await streamsOpen(20);
      const with20 = await apiConnections();
      Object.assign(second, await open(20, 'second'));
      await streamsOpen(40);
      expect(await apiConnections(), 'api connections with 40 streams open').to.equal(with20);
      expect(with20, `api connections with 20 streams open, ${members.length} nodes`).to.be.at.most(2 * members.length);
    } finally {
      controller.abort();
      await Promise.all([...first.streams, ...second.streams]);
      await Promise.all([...first.runIds, ...second.runIds].map((runId) => request(api.app).post(`/api/chat/runs/${runId}/cancel`).set(auth())));
    }
  });

  it('cancels a running run within 1 s (the cancel reaches its worker over sharded pub/sub)', async () => {
    const runId = await startRunOk(api.app, stack.alice.key, { prompt: words(400) });
    await waitForRunStatus(api.deps, runId, ['running']);
    const asked = Date.now();
    const res = await request(api.app).post(`/api/chat/runs/${runId}/cancel`).set(auth());
    expect(res.status).to.equal(202);
    await waitFor(
      async () => {
        const events = await api.deps.redis.xrange(`${api.prefix}:run:{${runId}}:events`, '-', '+');
        return events.at(-1)?.[1][1] === '[DONE]';
      },
      { what: 'the worker to stop the run', timeoutMs: 10_000 },
    );
    const stoppedAfter = Date.now() - asked;
    expect(stoppedAfter, 'stopped within 1 s').to.be.below(1_000);
    expect((await api.deps.db.run.findUniqueOrThrow({ where: { id: runId } })).status).to.equal('cancelled');
  });

  it('creates exactly one run for 20 concurrent duplicates of an Idempotency-Key', async () => {
    const headers = { 'Idempotency-Key': `cluster-burst-${Date.now()}` };
    const answers = await Promise.all(Array.from({ length: 20 }, () => postRun(api.app, stack.alice.key, { prompt: 'burst' }, headers)));
    expect(answers.map((a) => a.status)).to.deep.equal(Array(20).fill(202));
    expect(new Set(answers.map((a) => a.body.runId)).size).to.equal(1);
    expect(await api.deps.db.run.count({ where: { idempotencyKey: headers['Idempotency-Key'] } })).to.equal(1);
  });

  it('answers 429 rate_limited past RATE_LIMIT_PER_MINUTE, counted exactly under concurrency', async () => {
    const limited = startApi({ ...stack.env, QUEUE_PREFIX: api.prefix, RATE_LIMIT_PER_MINUTE: '3' });
    try {
      const erin = await createAccount(limited.deps.db);
      await waitFor(() => Date.now() % 60_000 < 45_000, { what: 'the start of a minute', timeoutMs: 20_000, intervalMs: 250 });
      const burst = await Promise.all(Array.from({ length: 10 }, () => request(limited.app).get('/api/chat/runs').set(erin.auth)));
      expect(burst.filter((r) => r.status === 200)).to.have.length(3);
      const refused = burst.filter((r) => r.status === 429);
      expect(refused).to.have.length(7);
      expect(refused[0]!.body).to.include({ error: 'rate_limited' }).and.have.keys('error', 'detail', 'fix', 'docUrl', 'requestId');
    } finally {
      await limited.close();
    }
  });

  it('runs the jobs of every shard within one WORKER_CONCURRENCY budget per worker process', async () => {
    await expectOneBudgetAcrossShards({ ...stack.env, QUEUE_PREFIX: `${api.prefix}-budget` }, SHARDS);
  });
});
