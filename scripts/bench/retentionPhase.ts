import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import type { Db } from '../../shared/infra/db.js';
import { createAccountKey } from '../../shared/accounts/apiKeys.js';
import { loadConfig } from '../../shared/infra/config.js';
import { createLogger } from '../../shared/infra/logger.js';
import { RunQueues } from '../../shared/infra/runQueues.js';
import { RunAdmission } from '../../shared/flow/runAdmission.js';
import { HISTORY_TABLES, pruneExpiredChats } from '../../shared/runs/retention.js';
import { apiClient, type Api } from './apiClient.js';
import { seedHistory } from './history.js';
import { log, REDIS_URL } from './options.js';
import { spawnTs, type Spawned } from './processes.js';
import { startWorkers } from './runyardProcesses.js';
import { round, summary } from './stats.js';
import { freePort } from './support.js';

/**
 * History that lives for years (SPEC section 17): `runs` finished runs (messages, a tool step,
 * attempt, key, cleanup record) seeded 400 days old, then pruned by a retention pass while the api
 * takes POSTs at `rate`/s — their p99 against the same rate without the prune, from the same run —
 * and the rows it deleted per second. Then the cycle again, three times: the same volume of history
 * written and erased; the history tables' size on disk after each writing, which must come back to
 * a steady state rather than grow cycle after cycle (the pass vacuums them).
 */
export type RetentionResult = {
  runs: number;
  postP99Ms: { withoutPrune: number; duringPrune: number; ratio: number };
  postsDuringPrune: number;
  prune: { seconds: number; chatsDeleted: number; rowsDeleted: number; rowsPerSecond: number; vacuumMs: number };
  historyTablesMiB: { beforeSeed: number; afterSeed: number[]; afterPrune: number[] };
};

const AGED_DAYS = 400;
const CYCLES = 4;

export async function retentionPhase(env: Record<string, string>, db: Db, runs: number, rate: number): Promise<RetentionResult> {
  const processes: Spawned[] = [];
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  // The fleet keeps years: its own retention job finds nothing; the passes measured here are the bench's.
  const fleetEnv = { ...env, RETENTION_DAYS: '36500' };
  try {
    const port = await freePort();
    const apiEnv = { ...fleetEnv, PORT: String(port) };
    const api = spawnTs('api/main.ts', [], apiEnv, `http://127.0.0.1:${port}/healthz`);
    processes.push(api);
    await api.ready;
    await startWorkers(apiEnv, processes);
    const poster = await createAccountKey(db, 'retention-poster');
    const client = apiClient(`http://127.0.0.1:${port}`, poster.rawKey);
    const config = loadConfig({ ...process.env, ...env, RETENTION_DAYS: '30' });
    const runQueues = new RunQueues(redis, config.QUEUE_PREFIX, config.QUEUE_SHARDS);
    const admission = new RunAdmission({ redis, runQueues, config, db, logger: createLogger('bench', 'warn') });
    const prune = () => pruneExpiredChats({ db, redis, admission, config });

    const sizes = { beforeSeed: await historyMiB(db), afterSeed: [] as number[], afterPrune: [] as number[] };
    const aged = await createAccountKey(db, 'retention-aged');
    let measured: Omit<RetentionResult, 'runs' | 'historyTablesMiB'> | undefined;
    for (let cycle = 1; cycle <= CYCLES; cycle++) {
      log(`retention cycle ${cycle}: seeding ${runs} finished runs ${AGED_DAYS} days old`);
      await seedHistory(db, aged.accountId, runs, { agedDays: AGED_DAYS, steps: true });
      // The bulk load's dirty pages written out now, not during what is measured.
      await db.$executeRawUnsafe('CHECKPOINT');
      sizes.afterSeed.push(await historyMiB(db));
      if (cycle === 1) {
        log(`retention: POST at ${rate}/s, 10 s to settle after the load, then 15 s measured, without a prune`);
        await postAtRate(client, rate, deadline(10_000));
        const without = await postAtRate(client, rate, deadline(15_000));
        const rowsBefore = await historyRows(db);
        log(`retention: a retention pass over ${runs} runs, POST at ${rate}/s meanwhile`);
        let done = false;
        const started = performance.now();
        const pass = prune().finally(() => (done = true));
        const during = await postAtRate(client, rate, () => done);
        const report = await pass;
        const seconds = (performance.now() - started) / 1000;
        const rowsDeleted = rowsBefore - (await historyRows(db));
        const p99 = (latencies: number[]) => summary(latencies).p99;
        measured = {
          postP99Ms: { withoutPrune: p99(without), duringPrune: p99(during), ratio: round(p99(during) / p99(without), 2) },
          postsDuringPrune: during.length,
          prune: {
            seconds: round(seconds, 1),
            chatsDeleted: report.chatsDeleted,
            rowsDeleted,
            rowsPerSecond: Math.round(rowsDeleted / seconds),
            vacuumMs: report.vacuumMs ?? 0,
          },
        };
      } else {
        log(`retention cycle ${cycle}: a retention pass`);
        await prune();
      }
      sizes.afterPrune.push(await historyMiB(db));
    }
    client.close();
    await runQueues.close();
    return { runs, ...measured!, historyTablesMiB: sizes };
  } finally {
    await Promise.all(processes.map((p) => p.stop()));
    redis.disconnect();
  }
}

const deadline = (ms: number) => {
  const end = Date.now() + ms;
  return () => Date.now() >= end;
};

/** POSTs at `rate`/s until `done()`; the latencies. */
async function postAtRate(api: Api, rate: number, done: () => boolean): Promise<number[]> {
  const latencies: number[] = [];
  const posts: Promise<void>[] = [];
  const start = performance.now();
  while (!done()) {
    const wait = start + (posts.length * 1000) / rate - performance.now();
    if (wait > 0) await sleep(wait);
    posts.push(api.post().then(({ ms }) => void latencies.push(ms)));
  }
  await Promise.all(posts);
  return latencies;
}

async function historyMiB(db: Db): Promise<number> {
  const [row] = await db.$queryRaw<{ bytes: bigint }[]>`
    SELECT sum(pg_total_relation_size(c.oid))::bigint AS bytes FROM pg_class c WHERE c.relname = ANY(${[...HISTORY_TABLES]}) AND c.relkind = 'r'`;
  return round(Number(row!.bytes) / 1024 / 1024, 1);
}

async function historyRows(db: Db): Promise<number> {
  let rows = 0;
  for (const table of HISTORY_TABLES) rows += Number((await db.$queryRawUnsafe<{ n: bigint }[]>(`SELECT count(*) AS n FROM "${table}"`))[0]!.n);
  return rows;
}
