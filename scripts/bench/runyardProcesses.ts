import type { Db } from '../../shared/infra/db.js';
import { spawnTs, type Spawned } from './processes.js';
import { WORKERS, CONCURRENCY, WARMUP, DATABASE_URL, PREFIX, log } from './options.js';
import { freePort, lastRunSeq, waitForCompletedRuns } from './support.js';
import { type Api, postAsFastAsTheyGo } from './apiClient.js';

/** runyard's own processes for the bench: their environment, the worker processes, and a warm-up before anything is timed. */

/** The environment of the bench's api and worker processes; `extra` adds to it. */
export const runyardEnv = (port: number, extra: Record<string, string>): Record<string, string> => ({
  DATABASE_URL,
  QUEUE_PREFIX: PREFIX,
  PORT: String(port),
  LOG_LEVEL: 'warn',
  LOCAL_MODEL_DELAY_MS: '0',
  ACCOUNT_MAX_ACTIVE_RUNS: '1000000',
  RATE_LIMIT_PER_MINUTE: '10000000',
  // One key opens every stream of the bench (phase 2 holds 1,000 idle ones at once).
  STREAMS_PER_KEY: '1000000',
  WORKER_CONCURRENCY: String(CONCURRENCY),
  RUNYARD_SECRET: 'bench-secret-0123456789abcdef',
  // Every bench run is a new one-run chat: a title call each would double the model calls and be
  // measured as runs. Titles are a chat's cost, not a run's (docs/performance.md has their figure).
  CHAT_TITLES: 'false',
  ...extra,
});

/**
 * WORKERS worker processes, each with a metrics port to wait on; added to `processes` (which the
 * caller stops) before waiting, and resolves once all are ready.
 */
export async function startWorkers(env: Record<string, string>, processes: Spawned[], nodeArgs: (name: string) => string[] = () => []): Promise<Spawned[]> {
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
export async function warmUp(api: Api, db: Db) {
  if (WARMUP <= 0) return;
  log(`warm-up: ${WARMUP} runs end to end, not measured`);
  const afterSeq = await lastRunSeq(db);
  await postAsFastAsTheyGo(api, WARMUP);
  await waitForCompletedRuns(db, afterSeq, WARMUP, 'the warm-up runs', 200);
}
