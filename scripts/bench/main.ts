import os from 'node:os';
import { Redis } from 'ioredis';
import { createDatabase } from '../../shared/infra/db.js';
import { createAccountKey } from '../../shared/accounts/apiKeys.js';
import { dropDatabaseIfExists, migrateDatabase } from '../../shared/infra/migrate.js';
import { percentile, round, rssMiB, summary } from './stats.js';
import { spawnTs, type Spawned } from './processes.js';
import { cpuMsPerItem, cpuSnapshot } from './cpu.js';
import { seedHistory } from './history.js';
import { measureWebhooks, startBenchWebhookReceiver, webhookRunBody } from './webhookPhase.js';
import { startAgentToolServer } from './agentPhase.js';
import {
  N,
  WORKERS,
  CONCURRENCY,
  RATE,
  RATE_SECONDS,
  STREAM_CLIENTS,
  IDLE_STREAMS,
  HISTORY,
  WARMUP,
  AGENT_RUNS,
  AGENT_IN_FLIGHT,
  WEBHOOK_RUNS,
  WORKSPACE_RUNS,
  LONG_CHATS,
  CHAT_TURNS,
  LONG_CHAT_WINDOW_TOKENS,
  LONG_CHAT_COMPACT_AT_PERCENT,
  TRACING_RUNS,
  NOISY_RUNS,
  RETENTION_RUNS,
  FIRST_TOKEN_RUNS,
  FIRST_TOKEN_RATE,
  MEMORY_RUNS,
  DATABASE_URL,
  REDIS_URL,
  PREFIX,
  log,
  TARGETS,
  opts,
} from './options.js';
import { freePort, writeJson, lastRunSeq, onAClock, waitForCompletedRuns } from './support.js';
import { rawBullmqThroughput } from './rawBullmq.js';
import { httpFloor } from './httpFloorPhase.js';
import { apiClient, postAsFastAsTheyGo } from './apiClient.js';
import { rejectedRequestCpu } from './rejectedRequests.js';
import { streamOverhead, idleStreamCost } from './streamPhases.js';
import { runyardEnv, startWorkers, warmUp } from './runyardProcesses.js';
import { clusterMain } from './clusterMain.js';
import { agentPhase } from './agentRunsPhase.js';
import { longChatsPhase } from './longChatsPhase.js';
import { tracingOverhead } from './tracingPhase.js';
import { noisyNeighbour } from './noisyNeighbourPhase.js';
import { retentionPhase } from './retentionPhase.js';
import { workspacePhase } from './workspacePhase.js';
import { firstTokenOverhead, memoryPerInFlightRun } from './agentPathPhases.js';
import { findExecutable } from '../../shared/workspaces/workspaceRequest.js';
import { printTable } from './report.js';

/**
 * `npm run bench`: runyard against raw BullMQ on this machine, phase by phase (each phase in its
 * own file here), on a database and queue prefix of its own. docs/performance.md says what each
 * figure means.
 */

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
    const env = runyardEnv(port, {
      REDIS_URL,
      RUNYARD_STREAM_TIMINGS: 'true',
      TOOL_URL_ALLOWLIST: `${agentTools.url},${webhookReceiver.origin}`,
      LOCAL_MODEL_CONTEXT_TOKENS: String(LONG_CHAT_WINDOW_TOKENS),
    });
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
    await onAClock(RATE * RATE_SECONDS, RATE, async () => {
      const { ms, runId } = await api.post();
      postLatencies.push(ms);
      rateRunIds.push(runId);
    });
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

    log(
      `phase 6: agent runs, ${AGENT_IN_FLIGHT} in flight: ${AGENT_RUNS} of 2 steps and ${Math.round(AGENT_RUNS / 4)} of 10 (a step's CPU), ${AGENT_RUNS} of 3 (tool call, tool call, answer), then half as many at half that rate`,
    );
    const plainRunCpuMs = Object.values(throughputCpu).reduce((sum, ms) => sum + ms, 0) - (throughputCpu.bench ?? 0);
    const agent =
      AGENT_RUNS > 0
        ? await agentPhase(
            `http://127.0.0.1:${port}`,
            rawKey,
            agentTools,
            db,
            ownProcesses.filter((p) => p.kind !== 'bench'),
            plainRunCpuMs,
          )
        : null;
    await agentTools.close();

    log(`phase 7: ${WEBHOOK_RUNS} runs with a webhook, as fast as they go, then ${Math.min(200, WEBHOOK_RUNS)} at 20/s (idle fleet)`);
    let webhooks = null;
    if (WEBHOOK_RUNS > 0) {
      const hookClient = apiClient(`http://127.0.0.1:${port}`, rawKey, webhookRunBody(webhookReceiver.url));
      webhooks = await measureWebhooks(async () => (await hookClient.post()).runId, webhookReceiver, WEBHOOK_RUNS);
      hookClient.close();
    }
    await webhookReceiver.close();

    log(`phase 7b: ${LONG_CHATS} long chats of ${CHAT_TURNS} turns, without compaction, then with it (at ${LONG_CHAT_COMPACT_AT_PERCENT}% of the window)`);
    const longChats =
      LONG_CHATS > 0 && CHAT_TURNS > 0
        ? await longChatsPhase(
            `http://127.0.0.1:${port}`,
            db,
            ownProcesses.filter((p) => p.kind !== 'bench'),
            { chats: LONG_CHATS, turns: CHAT_TURNS, windowTokens: LONG_CHAT_WINDOW_TOKENS, compactAtPercent: LONG_CHAT_COMPACT_AT_PERCENT },
          )
        : null;

    let workspaces = null;
    if (WORKSPACE_RUNS > 0 && findExecutable('bwrap')) {
      log(`phase 7c: workspaces, ${WORKSPACE_RUNS} runs of 10 \`exec true\` steps one at a time, then 1/10/50 MiB workspaces`);
      workspaces = await workspacePhase(`http://127.0.0.1:${port}`, rawKey, db, WORKSPACE_RUNS);
    } else if (WORKSPACE_RUNS > 0) log('phase 7c: skipped (bubblewrap is not installed: apt-get install bubblewrap)');

    let firstToken = null;
    if (FIRST_TOKEN_RUNS > 0) {
      log(`phase 7d: first token, ${FIRST_TOKEN_RUNS} runs at ${FIRST_TOKEN_RATE}/s, each read over SSE from its POST`);
      firstToken = await firstTokenOverhead(api, FIRST_TOKEN_RUNS, FIRST_TOKEN_RATE);
    }

    // Past AUTH_FAILURES_PER_MINUTE the bench's own address is refused for the rest of the minute.
    log('phase 8: rejected requests (unknown keys)');
    const rejected = await rejectedRequestCpu(`http://127.0.0.1:${port}`, apiProcess.child.pid!, Math.min(N, 5000));
    // The failures are counted in Redis for every api process of the prefix: the next phases' apis would refuse the bench too.
    for (const key of await redis.keys(`${PREFIX}:authfail:*`)) await redis.del(key);

    let tracing = null;
    if (TRACING_RUNS > 0) {
      log(`phase 9: tracing off against on, ${TRACING_RUNS} runs each on fresh processes`);
      // Its own processes: the ones measured so far stop taking jobs first.
      await Promise.all(processes.map((p) => p.stop()));
      processes.length = 0;
      tracing = await tracingOverhead(env, rawKey, db, TRACING_RUNS, Math.min(WARMUP, 2000));
    }

    let neighbours = null;
    if (NOISY_RUNS > 0) {
      log(`phase 10: the noisy neighbour, ${NOISY_RUNS} flooding runs, first in first out and then fair, on fresh processes`);
      await Promise.all(processes.map((p) => p.stop()));
      processes.length = 0;
      neighbours = await noisyNeighbour(env, db, NOISY_RUNS);
    }

    let retention = null;
    if (RETENTION_RUNS > 0) {
      log(`phase 11: retention, ${RETENTION_RUNS} runs past retention pruned under ${RATE} POST/s, then three more cycles, on fresh processes`);
      await Promise.all(processes.map((p) => p.stop()));
      processes.length = 0;
      retention = await retentionPhase(env, db, RETENTION_RUNS, RATE);
    }

    let memory = null;
    if (MEMORY_RUNS > 0) {
      log(`phase 12: memory, ${MEMORY_RUNS} agent runs in flight in one fresh worker (each waiting in a tool call)`);
      await Promise.all(processes.map((p) => p.stop()));
      processes.length = 0;
      memory = await memoryPerInFlightRun(env, rawKey, db, MEMORY_RUNS);
    }

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
      firstTokenOverheadMs: firstToken,
      memory,
      webhooks,
      longChats,
      workspaces,
      tracing,
      noisyNeighbour: neighbours,
      retention,
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
          agentCpuMsPerStep: agent ? agent.cpuMsPerStep <= TARGETS.agentCpuMsPerStepAtMost : null,
          webhooksLatency: webhooks ? webhooks.latencyMs.p50 < TARGETS.webhooksP50UnderMs && webhooks.latencyMs.p99 < TARGETS.webhooksP99UnderMs : null,
          firstTokenOverhead: firstToken ? firstToken.p50 <= TARGETS.firstTokenP50UnderMs && firstToken.p99 <= TARGETS.firstTokenP99UnderMs : null,
          memoryPerInFlightRun: memory ? memory.kibPerInFlightRun <= TARGETS.kibPerInFlightRunAtMost : null,
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

await main();
