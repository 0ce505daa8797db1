import os from 'node:os';
import { createDatabase } from '../../shared/infra/db.js';
import { createAccountKey } from '../../shared/accounts/apiKeys.js';
import { dropDatabaseIfExists, migrateDatabase } from '../../shared/infra/migrate.js';
import { round } from './stats.js';
import { spawnTs, type Spawned } from './processes.js';
import { cpuMsPerItem, cpuSnapshot } from './cpu.js';
import { measureMasters } from './clusterPhase.js';
import { startRedisCluster } from '../localRedisCluster.js';
import { N, WORKERS, CONCURRENCY, DATABASE_URL, log, opts } from './options.js';
import { freePort, writeJson, lastRunSeq, waitForCompletedRuns } from './support.js';
import { apiClient, postAsFastAsTheyGo } from './apiClient.js';
import { runyardEnv, startWorkers, warmUp } from './runyardProcesses.js';

/** `npm run bench -- --cluster`: the end-to-end phase on a local Redis Cluster (see runClusterBench). */

/**
 * `--cluster`: the end-to-end phase on a local Redis Cluster with QUEUE_SHARDS = `--shards`. Reports
 * runs/s, CPU per run by kind, and for each master its Redis CPU per run and share of the commands
 * (the target: the busiest master runs at most 1.5× the commands of the least busy one).
 */
export async function clusterMain() {
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
