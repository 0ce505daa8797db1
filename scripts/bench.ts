import http from 'node:http';
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { parseArgs } from 'node:util';
import { writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { EventSourceParserStream } from 'eventsource-parser/stream';
import { createDatabase, type Db } from '../shared/infra/db.js';
import { createAccountKey } from '../shared/accounts/apiKeys.js';
import { dropDatabaseIfExists, migrateDatabase } from '../shared/infra/migrate.js';
import { percentile, round, rssMiB, summary } from './bench/stats.js';
import { spawnTs, type Spawned } from './bench/processes.js';
import { cpuMsPerItem, cpuSnapshot } from './bench/cpu.js';
import { seedHistory } from './bench/history.js';
import { measureWebhooks, startBenchWebhookReceiver, webhookRunBody } from './bench/webhookPhase.js';
import { measureMasters } from './bench/clusterPhase.js';
import { startRedisCluster } from './localRedisCluster.js';
import { agentRunBody, driveAgentRuns, startAgentToolServer, stepOverheadSummary, type AgentToolServer } from './bench/agentPhase.js';

/**
 * `npm run bench`: runyard against raw BullMQ on this machine, on a database and queue prefix of
 * its own. See the README's performance section for what each figure means.
 */
const { values: opts } = parseArgs({
  options: {
    runs: { type: 'string', default: '5000' },
    workers: { type: 'string', default: '2' },
    concurrency: { type: 'string', default: '16' },
    rate: { type: 'string', default: '200' },
    'rate-seconds': { type: 'string', default: '10' },
    'stream-clients': { type: 'string', default: '100' },
    'idle-streams': { type: 'string', default: '1000' },
    history: { type: 'string', default: '50000' },
    warmup: { type: 'string', default: '10000' },
    json: { type: 'string' },
    profile: { type: 'boolean', default: false },
    'perf-map': { type: 'boolean', default: false },
    'agent-runs': { type: 'string', default: '2000' },
    'agent-in-flight': { type: 'string', default: '50' },
    'webhook-runs': { type: 'string', default: '2000' },
    // On a local Redis Cluster (3 masters + 3 replicas, started by the bench): end-to-end runs only.
    cluster: { type: 'boolean', default: false },
    shards: { type: 'string', default: '3' },
  },
});
const N = Number(opts.runs);
const WORKERS = Number(opts.workers);
const CONCURRENCY = Number(opts.concurrency);
const RATE = Number(opts.rate);
const RATE_SECONDS = Number(opts['rate-seconds']);
const STREAM_CLIENTS = Number(opts['stream-clients']);
const IDLE_STREAMS = Number(opts['idle-streams']);
const HISTORY = Number(opts.history);
const WARMUP = Number(opts.warmup);
const AGENT_RUNS = Number(opts['agent-runs']);
const AGENT_IN_FLIGHT = Number(opts['agent-in-flight']);
const WEBHOOK_RUNS = Number(opts['webhook-runs']);

const DATABASE_URL = process.env.BENCH_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/runyard_bench';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const PREFIX = `runyard-bench-${process.pid}`;
const PROMPT = Array.from({ length: 20 }, (_, i) => `token${i}`).join(' ');
const log = (message: string) => process.stderr.write(`bench: ${message}\n`);

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** --json: the results as JSON, to a file or (`--json -`) to stdout. */
async function writeJson(results: unknown) {
  if (opts.json === undefined) return;
  const text = JSON.stringify(results, null, 2);
  if (opts.json === '' || opts.json === '-') process.stdout.write(`${text}\n`);
  else await writeFile(opts.json, text);
}

async function waitUntil(probe: () => Promise<boolean>, what: string, timeoutMs = 600_000, everyMs = 50) {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Where the next phase's runs start: runs.seq is their insertion order. */
async function lastRunSeq(db: Db): Promise<bigint> {
  return (await db.run.aggregate({ _max: { seq: true } }))._max.seq ?? 0n;
}

/**
 * Waits until `n` runs after `afterSeq` are completed. It polls an index range rather than a list
 * of the phase's run ids: a poll must not load the database it measures (a 10,000-id IN list is a
 * sequential scan of runs, several times a second).
 */
async function waitForCompletedRuns(db: Db, afterSeq: bigint, n: number, what: string, everyMs = 50) {
  await waitUntil(async () => (await db.run.count({ where: { seq: { gt: afterSeq }, status: 'completed' } })) >= n, what, 900_000, everyMs);
}

const RAW_ROUNDS = 5;
/** The issue's targets for this machine. */
const TARGETS = { ratioAtLeast: 0.15, postP99UnderMs: 25, streamingOverheadP99UnderMs: 10, agentStepOverheadP99UnderMs: 10 };

/**
 * Phase 1: bare BullMQ, no-op jobs, the same number of worker processes and concurrency. One
 * short burst swung by ±40% from run to run (JIT warm-up, GC, the other processes on the two
 * cores), so a warm-up round comes first and the figure is the median of RAW_ROUNDS rounds of N jobs.
 */
async function rawBullmqThroughput(redis: Redis): Promise<{ median: number; rounds: number[]; cpuMsPerJob: Record<string, number> }> {
  const queueName = 'raw-noop';
  const workers = Array.from({ length: WORKERS }, () =>
    spawnTs('scripts/bench/rawWorker.ts', [queueName, PREFIX, String(CONCURRENCY), REDIS_URL], {}, 'ready'),
  );
  await Promise.all(workers.map((w) => w.ready));
  const queue = new Queue(queueName, { connection: redis, prefix: PREFIX });
  let added = 0;
  const measureRound = async (jobs: number) => {
    const started = performance.now();
    for (let i = 0; i < jobs; i += 500) {
      const batch = Array.from({ length: Math.min(500, jobs - i) }, () => ({ name: 'noop', data: { i: added }, opts: { jobId: `noop-${added++}` } }));
      await queue.addBulk(batch);
    }
    await waitUntil(async () => (await queue.getCompletedCount()) >= added, 'raw jobs', 600_000, 20);
    return jobs / ((performance.now() - started) / 1000);
  };
  await measureRound(Math.min(N, 1000));
  const rounds: number[] = [];
  const own = [{ pid: process.pid, kind: 'bench' }, ...workers.map((w) => ({ pid: w.child.pid!, kind: 'workers' }))];
  const cpuBefore = await cpuSnapshot(own);
  for (let i = 0; i < RAW_ROUNDS; i++) rounds.push(await measureRound(N));
  const cpuMsPerJob = cpuMsPerItem(cpuBefore, await cpuSnapshot(own), RAW_ROUNDS * N);
  await Promise.all(workers.map((w) => w.stop()));
  // The bench's keys are all deleted at the end (by prefix), raw queue included.
  return { median: percentile(rounds, 50), rounds: rounds.map((r) => round(r, 0)), cpuMsPerJob };
}

/**
 * Phase 1b: the HTTP floor — express with the api's helmet and body parsing answering the same
 * POSTs from the same client with 202 and nothing else. CPU ms per POST, by kind.
 */
async function httpFloor(): Promise<Record<string, number>> {
  const port = await freePort();
  const server = spawnTs('scripts/bench/httpFloor.ts', [String(port)], {}, 'ready');
  try {
    await server.ready;
    const client = apiClient(`http://127.0.0.1:${port}`, 'floor');
    await postAsFastAsTheyGo(client, 5000); // warm-up: a cold express costs twice as much per POST
    const own = [
      { pid: process.pid, kind: 'bench' },
      { pid: server.child.pid!, kind: 'api' },
    ];
    const before = await cpuSnapshot(own);
    await postAsFastAsTheyGo(client, N);
    const after = await cpuSnapshot(own);
    client.close();
    return cpuMsPerItem(before, after, N);
  } finally {
    await server.stop();
  }
}

type Api = { base: string; key: string; post: () => Promise<{ ms: number; runId: string }>; close: () => void };

async function agentPhase(base: string, key: string, tools: AgentToolServer, db: Db) {
  const client = apiClient(base, key, agentRunBody(tools.url));
  const post = async () => (await client.post()).runId;
  // Warm the loop's code paths up first, as the other phases are.
  await driveAgentRuns(post, tools, Math.min(500, AGENT_RUNS), AGENT_IN_FLIGHT);
  tools.stepGaps.length = 0;
  const afterSeq = await lastRunSeq(db);
  const started = Date.now();
  const runIds = await driveAgentRuns(post, tools, AGENT_RUNS, AGENT_IN_FLIGHT);
  await waitForCompletedRuns(db, afterSeq, runIds.length, 'the agent runs');
  const [{ last }] = (await db.$queryRaw<{ last: Date }[]>`SELECT max(finished_at) AS last FROM runs WHERE id = ANY(${runIds}::uuid[])`) as [{ last: Date }];
  const steps = await db.run.aggregate({ where: { id: { in: runIds } }, _min: { steps: true }, _max: { steps: true } });
  client.close();
  return {
    runs: runIds.length,
    inFlight: AGENT_IN_FLIGHT,
    stepsPerRun: steps._min.steps === steps._max.steps ? steps._min.steps : `${steps._min.steps}–${steps._max.steps}`,
    runsPerSecond: round(runIds.length / ((last.getTime() - started) / 1000), 1),
    stepOverheadMs: stepOverheadSummary(tools.stepGaps),
  };
}

/**
 * POSTs with node:http on kept-alive sockets rather than fetch: the load generator shares the
 * machine with what it measures, and fetch costs it several times more CPU per request.
 */
function apiClient(base: string, key: string, body = JSON.stringify({ prompt: PROMPT })): Api {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 128 });
  const url = new URL('/api/chat/runs', base);
  const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
  const post = () =>
    new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = http.request(url, { method: 'POST', agent, headers }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  return {
    base,
    key,
    close: () => agent.destroy(),
    post: async () => {
      const started = performance.now();
      const { status, text } = await post();
      const ms = performance.now() - started;
      if (status !== 202) throw new Error(`POST answered ${status}: ${text}`);
      return { ms, runId: (JSON.parse(text) as { runId: string }).runId };
    },
  };
}

/**
 * What a rejected caller costs the api: POSTs with a different well-formed but unknown key each
 * time, from 64 concurrent clients. After AUTH_FAILURES_PER_MINUTE failures the address gets 429
 * before any key lookup, so this is the steady state of someone guessing keys. CPU ms per request, by kind.
 */
async function rejectedRequestCpu(
  base: string,
  apiPid: number,
  n: number,
): Promise<{ statuses: Record<string, number>; cpuMsPerRequest: Record<string, number> }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const body = JSON.stringify({ prompt: PROMPT });
  const statuses: Record<string, number> = {};
  const once = () =>
    new Promise<void>((resolve, reject) => {
      const key = `ry_sk_${randomBytes(32).toString('base64url')}`;
      const req = http.request(new URL('/api/chat/runs', base), {
        method: 'POST',
        agent,
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      });
      req.on('response', (res) => {
        statuses[String(res.statusCode)] = (statuses[String(res.statusCode)] ?? 0) + 1;
        res.resume().on('end', resolve);
      });
      req.on('error', reject);
      req.end(body);
    });
  const own = [
    { pid: process.pid, kind: 'bench' },
    { pid: apiPid, kind: 'api' },
  ];
  const before = await cpuSnapshot(own);
  let next = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < n) {
        next++;
        await once();
      }
    }),
  );
  const cpu = cpuMsPerItem(before, await cpuSnapshot(own), n);
  agent.destroy();
  return { statuses, cpuMsPerRequest: cpu };
}

/** POSTs `n` runs from 64 concurrent clients; the run ids. */
async function postAsFastAsTheyGo(api: Api, n: number): Promise<string[]> {
  const runIds: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < n) {
        next++;
        runIds.push((await api.post()).runId);
      }
    }),
  );
  return runIds;
}

/** Reads one run's stream; returns provider-emit → client-receive delays of deltas emitted after it connected. */
async function streamOverhead(api: Api, runId: string): Promise<number[]> {
  const res = await fetch(`${api.base}/api/chat/runs/${runId}/stream`, { headers: { authorization: `Bearer ${api.key}` } });
  const connectedAt = Date.now();
  const delays: number[] = [];
  const stream = res.body!.pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream());
  for await (const event of stream as unknown as AsyncIterable<{ data: string }>) {
    if (event.data === '[DONE]') break;
    const chunk = JSON.parse(event.data) as { type: string; providerMetadata?: { runyard?: { emittedAt?: number } } };
    const emittedAt = chunk.providerMetadata?.runyard?.emittedAt;
    if (chunk.type === 'text-delta' && emittedAt && emittedAt >= connectedAt) delays.push(Date.now() - emittedAt);
  }
  return delays;
}

/** N idle SSE clients (runs that no worker has picked up yet): what they cost the api. */
async function idleStreamCost(api: Api, apiPid: number, redis: Redis, db: Db) {
  const runIds = [];
  const afterSeq = await lastRunSeq(db);
  for (let i = 0; i < IDLE_STREAMS; i++) runIds.push((await api.post()).runId);
  const rssBefore = await rssMiB(apiPid);
  const controller = new AbortController();
  const open = runIds.map((runId) =>
    fetch(`${api.base}/api/chat/runs/${runId}/stream`, { headers: { authorization: `Bearer ${api.key}` }, signal: controller.signal })
      .then(async (res) => {
        for await (const _ of res.body!) void _;
      })
      .catch(() => {}),
  );
  await waitUntil(async () => {
    const metrics = await (await fetch(`${api.base}/metrics`)).text();
    return Number(/runyard_active_streams\{process="api"\} (\d+)/.exec(metrics)?.[1] ?? 0) >= IDLE_STREAMS;
  }, 'idle streams to connect');
  const clients = (await redis.client('LIST')) as string;
  const apiConnections = clients.split('\n').filter((line) => /name=runyard-api/.test(line)).length;
  const rssWith = await rssMiB(apiPid);
  controller.abort();
  await Promise.all(open);
  return { streams: IDLE_STREAMS, apiRedisConnections: apiConnections, apiRssBeforeMiB: rssBefore, apiRssWithStreamsMiB: rssWith, afterSeq };
}

/** The environment of the bench's api and worker processes; `extra` adds to it. */
const runyardEnv = (port: number, extra: Record<string, string>): Record<string, string> => ({
  DATABASE_URL,
  QUEUE_PREFIX: PREFIX,
  PORT: String(port),
  LOG_LEVEL: 'warn',
  LOCAL_MODEL_DELAY_MS: '0',
  ACCOUNT_MAX_ACTIVE_RUNS: '1000000',
  RATE_LIMIT_PER_MINUTE: '10000000',
  WORKER_CONCURRENCY: String(CONCURRENCY),
  RUNYARD_SECRET: 'bench-secret-0123456789abcdef',
  ...extra,
});

/**
 * WORKERS worker processes, each with a metrics port to wait on; added to `processes` (which the
 * caller stops) before waiting, and resolves once all are ready.
 */
async function startWorkers(env: Record<string, string>, processes: Spawned[], nodeArgs: (name: string) => string[] = () => []): Promise<Spawned[]> {
  const workerPorts = await Promise.all(Array.from({ length: WORKERS }, () => freePort()));
  const workers = workerPorts.map((metricsPort, i) =>
    spawnTs(
      'worker/main.ts',
      [],
      { ...env, WORKER_ID: `bench-${i}`, WORKER_METRICS_PORT: String(metricsPort) },
      `http://127.0.0.1:${metricsPort}/healthz`,
      nodeArgs(`worker-${i}`),
    ),
  );
  processes.push(...workers);
  await Promise.all(workers.map((w) => w.ready));
  return workers;
}

/**
 * Like the raw phase's warm-up round: nothing is timed on processes that have not yet run the whole
 * path at full load (JIT compilation, pools and caches filled).
 */
async function warmUp(api: Api, db: Db) {
  if (WARMUP <= 0) return;
  log(`warm-up: ${WARMUP} runs end to end, not measured`);
  const afterSeq = await lastRunSeq(db);
  await postAsFastAsTheyGo(api, WARMUP);
  await waitForCompletedRuns(db, afterSeq, WARMUP, 'the warm-up runs', 200);
}

/**
 * `--cluster`: the end-to-end phase on a local Redis Cluster with QUEUE_SHARDS = `--shards`. Reports
 * runs/s, CPU per run by kind, and for each master its Redis CPU per run and share of the commands
 * (the issue's target: the busiest master runs at most 1.5× the commands of the least busy one).
 */
async function clusterMain() {
  const shards = Number(opts.shards);
  log(`on a local Redis Cluster: ${shards} queue shards, ${N} runs, ${WORKERS} workers × ${CONCURRENCY}`);
  await dropDatabaseIfExists(DATABASE_URL);
  await migrateDatabase(DATABASE_URL);
  const database = createDatabase(DATABASE_URL, 4);
  const { db } = database;
  const cluster = await startRedisCluster({ nodeTimeoutMs: 5_000 });
  const processes: Spawned[] = [];
  try {
    const port = await freePort();
    const env = runyardEnv(port, { REDIS_CLUSTER_NODES: cluster.nodes, QUEUE_SHARDS: String(shards) });
    const apiProcess = spawnTs('api/main.ts', [], env, `http://127.0.0.1:${port}/healthz`);
    processes.push(apiProcess);
    await apiProcess.ready;
    const workers = await startWorkers(env, processes);
    const { rawKey } = await createAccountKey(db, 'bench');
    const api = apiClient(`http://127.0.0.1:${port}`, rawKey);
    await warmUp(api, db);
    log(`${N} runs end to end, as fast as they go`);
    const ownProcesses = [{ pid: apiProcess.child.pid!, kind: 'api' }, ...workers.map((w) => ({ pid: w.child.pid!, kind: 'workers' }))];
    let runsPerSecond = 0;
    let cpu: Record<string, number> = {};
    const masters = await measureMasters(cluster, async () => {
      const started = Date.now();
      const afterSeq = await lastRunSeq(db);
      const before = await cpuSnapshot(ownProcesses);
      await postAsFastAsTheyGo(api, N);
      await waitForCompletedRuns(db, afterSeq, N, 'the runs', 200);
      runsPerSecond = N / ((Date.now() - started) / 1000);
      cpu = cpuMsPerItem(before, await cpuSnapshot(ownProcesses), N);
      return N;
    });
    api.close();
    const results = {
      machine: { cores: os.cpus().length, node: process.version },
      settings: { cluster: '3 masters + 3 replicas on loopback', queueShards: shards, runs: N, workers: WORKERS, concurrencyPerWorker: CONCURRENCY },
      endToEndRunsPerSecond: round(runsPerSecond, 1),
      cpuMsPerRun: {
        api: cpu.api,
        workers: cpu.workers,
        postgres: cpu.postgres,
        redisAllMasters: round(
          masters.masters.reduce((sum, m) => sum + m.redisCpuMsPerRun, 0),
          3,
        ),
      },
      masters: masters.masters,
      mostToLeastCommands: masters.mostToLeastCommands,
      target: { mostToLeastCommandsAtMost: 1.5, met: masters.mostToLeastCommands <= 1.5 },
    };
    console.log(`\nrunyard on a Redis Cluster (${shards} queue shards, ${N} runs)`);
    console.log(`  end to end: ${results.endToEndRunsPerSecond} runs/s`);
    console.log(
      `  CPU ms per run: api ${cpu.api}, workers ${cpu.workers}, postgres ${cpu.postgres}, redis (all masters) ${results.cpuMsPerRun.redisAllMasters}`,
    );
    for (const m of masters.masters) console.log(`  master :${m.port}: ${(m.share * 100).toFixed(1)}% of commands, redis CPU ${m.redisCpuMsPerRun} ms per run`);
    console.log(`  busiest / least busy master, commands: ${masters.mostToLeastCommands}× (target ≤ 1.5×: ${results.target.met ? 'met' : 'NOT met'})`);
    await writeJson(results);
  } finally {
    await Promise.all(processes.map((p) => p.stop()));
    await database.close();
    await cluster.close();
  }
}

async function main() {
  if (opts.cluster) return clusterMain();
  log(`database ${new URL(DATABASE_URL).pathname.slice(1)}, queue prefix ${PREFIX}, ${N} runs, ${WORKERS} workers × ${CONCURRENCY}`);
  await dropDatabaseIfExists(DATABASE_URL);
  await migrateDatabase(DATABASE_URL);
  const database = createDatabase(DATABASE_URL, 4);
  const { db } = database;
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const processes: Spawned[] = [];
  try {
    log('phase 1: raw BullMQ no-op throughput');
    const raw = await rawBullmqThroughput(redis);
    const rawJobsPerSecond = raw.median;
    log('phase 1b: the HTTP floor (express, helmet and JSON parsing alone)');
    const floorCpuMsPerPost = await httpFloor();

    const agentTools = await startAgentToolServer();
    const webhookReceiver = await startBenchWebhookReceiver();
    const port = await freePort();
    const env = runyardEnv(port, { REDIS_URL, RUNYARD_STREAM_TIMINGS: 'true', TOOL_URL_ALLOWLIST: `${agentTools.url},${webhookReceiver.origin}` });
    // --perf-map: node writes /tmp/perf-<pid>.map, so a system-wide `perf` names the JavaScript functions.
    const profileArgs = (name: string) => [
      ...(opts.profile ? ['--cpu-prof', `--cpu-prof-dir=bench-profiles`, `--cpu-prof-name=${name}.cpuprofile`] : []),
      ...(opts['perf-map'] ? ['--perf-basic-prof', '--interpreted-frames-native-stack'] : []),
    ];
    const apiProcess = spawnTs('api/main.ts', [], env, `http://127.0.0.1:${port}/healthz`, profileArgs('api'));
    processes.push(apiProcess);
    await apiProcess.ready;
    const { rawKey, accountId } = await createAccountKey(db, 'bench');
    log(`seeding ${HISTORY} finished runs of history`);
    await seedHistory(db, accountId, HISTORY);
    const api = apiClient(`http://127.0.0.1:${port}`, rawKey);

    log(`phase 2: ${IDLE_STREAMS} idle SSE streams`);
    const idle = IDLE_STREAMS > 0 ? await idleStreamCost(api, apiProcess.child.pid!, redis, db) : null;

    const workers = await startWorkers(env, processes, profileArgs);
    const ownProcesses = [
      { pid: process.pid, kind: 'bench' },
      { pid: apiProcess.child.pid!, kind: 'api' },
      ...workers.map((w) => ({ pid: w.child.pid!, kind: 'workers' })),
    ];
    if (idle) await waitForCompletedRuns(db, idle.afterSeq, IDLE_STREAMS, 'the idle-stream runs');
    const workerRssBefore = await Promise.all(workers.map((w) => rssMiB(w.child.pid!)));
    await warmUp(api, db);

    // At light load a client connects before the worker emits, so live deltas can be timed.
    log(`phase 3: streaming overhead, ${STREAM_CLIENTS} runs one at a time, each watched over SSE`);
    const overheads: number[] = [];
    for (let i = 0; i < STREAM_CLIENTS; i++) overheads.push(...(await streamOverhead(api, (await api.post()).runId)));

    log(`phase 4: POST at ${RATE}/s for ${RATE_SECONDS}s`);
    const postLatencies: number[] = [];
    const rateRunIds: string[] = [];
    const rateAfterSeq = await lastRunSeq(db);
    const rateCpuBefore = await cpuSnapshot(ownProcesses);
    const inFlight: Promise<unknown>[] = [];
    const total = RATE * RATE_SECONDS;
    const start = performance.now();
    for (let i = 0; i < total; i++) {
      const due = start + (i * 1000) / RATE;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      inFlight.push(
        api.post().then(({ ms, runId }) => {
          postLatencies.push(ms);
          rateRunIds.push(runId);
        }),
      );
    }
    await Promise.all(inFlight);
    await waitForCompletedRuns(db, rateAfterSeq, rateRunIds.length, 'the fixed-rate runs');
    const rateCpu = cpuMsPerItem(rateCpuBefore, await cpuSnapshot(ownProcesses), rateRunIds.length);
    const queueToStart = (
      await db.$queryRaw<
        { ms: number }[]
      >`SELECT EXTRACT(EPOCH FROM (a.started_at - r.created_at)) * 1000 AS ms FROM runs r JOIN run_attempts a ON a.run_id = r.id AND a.attempt = 1 WHERE r.id = ANY(${rateRunIds}::uuid[])`
    ).map((row) => Number(row.ms));

    log(`phase 5: ${N} runs end to end, as fast as they go`);
    const throughputStart = Date.now();
    const throughputAfterSeq = await lastRunSeq(db);
    const throughputCpuBefore = await cpuSnapshot(ownProcesses);
    const runIds = await postAsFastAsTheyGo(api, N);
    await waitForCompletedRuns(db, throughputAfterSeq, N, 'the throughput runs', 200);
    const throughputCpu = cpuMsPerItem(throughputCpuBefore, await cpuSnapshot(ownProcesses), N);
    const [{ last }] = (await db.$queryRaw<{ last: Date }[]>`SELECT max(finished_at) AS last FROM runs WHERE id = ANY(${runIds}::uuid[])`) as [{ last: Date }];
    const persisted = await db.message.count({ where: { runId: { in: runIds }, role: 'assistant' } });
    const e2eRunsPerSecond = N / ((last.getTime() - throughputStart) / 1000);
    const workerRssAfter = await Promise.all(workers.map((w) => rssMiB(w.child.pid!)));

    log(`phase 6: ${AGENT_RUNS} agent runs (3 steps: tool call, tool call, answer), ${AGENT_IN_FLIGHT} in flight`);
    const agent = AGENT_RUNS > 0 ? await agentPhase(`http://127.0.0.1:${port}`, rawKey, agentTools, db) : null;
    await agentTools.close();

    log(`phase 7: ${WEBHOOK_RUNS} runs with a webhook, as fast as they go`);
    let webhooks = null;
    if (WEBHOOK_RUNS > 0) {
      const hookClient = apiClient(`http://127.0.0.1:${port}`, rawKey, webhookRunBody(webhookReceiver.url));
      webhooks = await measureWebhooks(async () => (await hookClient.post()).runId, webhookReceiver, WEBHOOK_RUNS);
      hookClient.close();
    }
    await webhookReceiver.close();

    // Last: past AUTH_FAILURES_PER_MINUTE the bench's own address is refused for the rest of the minute.
    log('phase 8: rejected requests (unknown keys)');
    const rejected = await rejectedRequestCpu(`http://127.0.0.1:${port}`, apiProcess.child.pid!, Math.min(N, 5000));

    const results = {
      machine: { cores: os.cpus().length, node: process.version },
      settings: {
        historyRuns: HISTORY,
        warmupRuns: WARMUP,
        runs: N,
        workers: WORKERS,
        concurrencyPerWorker: CONCURRENCY,
        model: 'local/echo',
        localModelDelayMs: 0,
        promptTokens: 20,
      },
      rawBullmqJobsPerSecond: round(rawJobsPerSecond, 0),
      rawBullmqRoundsJobsPerSecond: raw.rounds,
      endToEndRunsPerSecond: round(e2eRunsPerSecond, 1),
      ratio: round(e2eRunsPerSecond / rawJobsPerSecond, 3),
      assistantMessagesPersisted: persisted,
      postLatencyMs: { offeredRatePerSecond: RATE, ...summary(postLatencies) },
      queueToStartMs: summary(queueToStart),
      streamingOverheadMs: summary(overheads),
      workerRssMiB: { before: workerRssBefore, after: workerRssAfter },
      agent,
      webhooks,
      rejectedRequests: rejected,
      cpuMsPerRun: { endToEnd: throughputCpu, atFixedRate: rateCpu },
      // What the ratio target leaves per run on this machine, and what a run's parts cost at the least.
      cpuBudgetMsPerRunAtTargetRatio: round((os.cpus().length * 1000) / (TARGETS.ratioAtLeast * rawJobsPerSecond), 3),
      floors: { rawBullmqCpuMsPerJob: raw.cpuMsPerJob, httpCpuMsPerPost: floorCpuMsPerPost },
      idleStreams: idle
        ? {
            streams: idle.streams,
            apiRedisConnections: idle.apiRedisConnections,
            apiRssBeforeMiB: idle.apiRssBeforeMiB,
            apiRssWithStreamsMiB: idle.apiRssWithStreamsMiB,
          }
        : null,
      targets: {
        ...TARGETS,
        met: {
          ratio: e2eRunsPerSecond / rawJobsPerSecond >= TARGETS.ratioAtLeast,
          postP99: percentile(postLatencies, 99) < TARGETS.postP99UnderMs,
          streamingOverheadP99: percentile(overheads, 99) < TARGETS.streamingOverheadP99UnderMs,
          agentStepOverheadP99: agent ? agent.stepOverheadMs.p99 < TARGETS.agentStepOverheadP99UnderMs : null,
        },
      },
    };
    printTable(results);
    await writeJson(results);
  } finally {
    await Promise.all(processes.map((p) => p.stop()));
    // In slices: a long run leaves more keys than one call's arguments can spread.
    const leftovers = await redis.keys(`${PREFIX}:*`);
    for (let i = 0; i < leftovers.length; i += 1000) await redis.unlink(...leftovers.slice(i, i + 1000));
    await database.close();
    redis.disconnect();
  }
}

const CPU_KINDS = ['api', 'workers', 'postgres', 'redis', 'bench'];
const cpuRow = (cpu: Record<string, number>) =>
  CPU_KINDS.filter((kind) => cpu[kind] !== undefined)
    .map((kind) => `${kind} ${cpu[kind]!.toFixed(3)}`)
    .join(', ');

function printTable(r: {
  rawBullmqJobsPerSecond: number;
  rawBullmqRoundsJobsPerSecond: number[];
  endToEndRunsPerSecond: number;
  ratio: number;
  postLatencyMs: { offeredRatePerSecond: number; p50: number; p99: number };
  queueToStartMs: { p50: number; p99: number };
  streamingOverheadMs: { n: number; p50: number; p99: number };
  workerRssMiB: { before: number[]; after: number[] };
  cpuMsPerRun: { endToEnd: Record<string, number>; atFixedRate: Record<string, number> };
  cpuBudgetMsPerRunAtTargetRatio: number;
  floors: { rawBullmqCpuMsPerJob: Record<string, number>; httpCpuMsPerPost: Record<string, number> };
  idleStreams: { streams: number; apiRedisConnections: number; apiRssBeforeMiB: number; apiRssWithStreamsMiB: number } | null;
  agent: { runs: number; inFlight: number; runsPerSecond: number; stepOverheadMs: { n: number; p50: number; p90: number; p99: number } } | null;
  webhooks: { runs: number; delivered: number; deliveriesPerSecond: number; latencyMs: { p50: number; p99: number } } | null;
  rejectedRequests: { statuses: Record<string, number>; cpuMsPerRequest: Record<string, number> };
}) {
  const rows: [string, string][] = [
    ['raw BullMQ no-op jobs/s (median of rounds)', `${r.rawBullmqJobsPerSecond} (${r.rawBullmqRoundsJobsPerSecond.join(', ')})`],
    ['end-to-end runs/s (POST → completed + persisted)', String(r.endToEndRunsPerSecond)],
    [`ratio (target ≥ ${TARGETS.ratioAtLeast})`, String(r.ratio)],
    [
      `POST latency p50 / p99 at ${r.postLatencyMs.offeredRatePerSecond}/s (target p99 < ${TARGETS.postP99UnderMs} ms)`,
      `${r.postLatencyMs.p50} / ${r.postLatencyMs.p99} ms`,
    ],
    ['queue-to-start p50 / p99', `${r.queueToStartMs.p50} / ${r.queueToStartMs.p99} ms`],
    [
      `streaming overhead p50 / p99 (${r.streamingOverheadMs.n} deltas; target p99 < ${TARGETS.streamingOverheadP99UnderMs} ms)`,
      `${r.streamingOverheadMs.p50} / ${r.streamingOverheadMs.p99} ms`,
    ],
    ['CPU ms per run, end to end', cpuRow(r.cpuMsPerRun.endToEnd)],
    [`CPU ms per run, at ${r.postLatencyMs.offeredRatePerSecond}/s`, cpuRow(r.cpuMsPerRun.atFixedRate)],
    ['CPU ms per run the ratio target leaves (all processes)', String(r.cpuBudgetMsPerRunAtTargetRatio)],
    ['floor: CPU ms per raw BullMQ no-op job', cpuRow(r.floors.rawBullmqCpuMsPerJob)],
    ['floor: CPU ms per POST to bare express + helmet', cpuRow(r.floors.httpCpuMsPerPost)],
    [
      `rejected requests (${Object.entries(r.rejectedRequests.statuses)
        .map(([status, count]) => `${count}× ${status}`)
        .join(', ')}): CPU ms each`,
      cpuRow(r.rejectedRequests.cpuMsPerRequest),
    ],
    ['worker RSS before → after', r.workerRssMiB.before.map((b, i) => `${b} → ${r.workerRssMiB.after[i]} MiB`).join(', ')],
  ];
  if (r.idleStreams) {
    rows.push([`${r.idleStreams.streams} idle SSE streams: api Redis connections`, String(r.idleStreams.apiRedisConnections)]);
    rows.push([`${r.idleStreams.streams} idle SSE streams: api RSS`, `${r.idleStreams.apiRssBeforeMiB} → ${r.idleStreams.apiRssWithStreamsMiB} MiB`]);
  }
  if (r.agent) {
    rows.push([`agent runs/s (3 steps, ${r.agent.inFlight} in flight)`, String(r.agent.runsPerSecond)]);
    rows.push([
      `agent per-step overhead p50 / p90 / p99 (tool answer → next step's call; target p99 < ${TARGETS.agentStepOverheadP99UnderMs} ms)`,
      `${r.agent.stepOverheadMs.p50} / ${r.agent.stepOverheadMs.p90} / ${r.agent.stepOverheadMs.p99} ms (${r.agent.stepOverheadMs.n} steps)`,
    ]);
  }
  if (r.webhooks) {
    rows.push([`webhooks: ${r.webhooks.delivered} of ${r.webhooks.runs} delivered once, deliveries/s`, String(r.webhooks.deliveriesPerSecond)]);
    rows.push(['webhook delivery latency p50 / p99 (transition → receiver)', `${r.webhooks.latencyMs.p50} / ${r.webhooks.latencyMs.p99} ms`]);
  }
  const width = Math.max(...rows.map(([k]) => k.length));
  process.stdout.write(`\n${rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n')}\n\n`);
}

await main();
