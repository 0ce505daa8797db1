import { setTimeout as sleep } from 'node:timers/promises';
import type { Db } from '../../shared/infra/db.js';
import { createAccountKey } from '../../shared/accounts/apiKeys.js';
import { apiClient, postAsFastAsTheyGo, type Api } from './apiClient.js';
import { log } from './options.js';
import { spawnTs, type Spawned } from './processes.js';
import { startWorkers } from './runyardProcesses.js';
import { round, summary } from './stats.js';
import { freePort, waitUntil } from './support.js';

/**
 * The noisy neighbour (SPEC section 15): account A posts `floodRuns` as fast as it can (its limits
 * raised) while account B posts a run every 100 ms, on fresh processes first in, first out
 * (FAIR_SCHEDULING=false), then with the fair scheduler. Printed from the same bench run: B's
 * queue-to-start alone on an idle fleet and under the flood, A's runs/s and the whole fleet's.
 * Then, with the scheduler, three accounts of weights 1, 1 and 2 all backlogged: their shares of
 * the runs started while all three still wait.
 */
export type FloodResult = {
  floodRuns: number;
  bRuns: number;
  bIdleQueueToStartMs: { p50: number; p99: number };
  bFloodQueueToStartMs: { p50: number; p99: number };
  runDurationMsP50: number;
  aRunsPerSecond: number;
  fleetRunsPerSecond: number;
};
export type NoisyNeighbour = {
  fifo: FloodResult;
  fair: FloodResult;
  /** Fair's fleet runs/s against FIFO's (target ≥ 0.95). */
  fleetRatio: number;
  weights: { weights: number[]; startedPercent: number[]; runsCounted: number };
};

const B_EVERY_MS = 100;
// Each run streams PROMPT's 20 tokens 2 ms apart: a run lasts tens of ms, so a queue is something to wait in.
const RUN_ENV = { LOCAL_MODEL_DELAY_MS: '2' };

export async function noisyNeighbour(env: Record<string, string>, db: Db, floodRuns: number): Promise<NoisyNeighbour> {
  const fifo = await flood({ ...env, ...RUN_ENV, FAIR_SCHEDULING: 'false' }, db, floodRuns, 'fifo');
  const fair = await flood({ ...env, ...RUN_ENV, FAIR_SCHEDULING: 'true' }, db, floodRuns, 'fair');
  const weights = await weightedShares({ ...env, ...RUN_ENV, FAIR_SCHEDULING: 'true' }, db, Math.max(300, Math.floor(floodRuns / 4)));
  return { fifo, fair, fleetRatio: round(fair.fleetRunsPerSecond / fifo.fleetRunsPerSecond, 3), weights };
}

async function startApi(env: Record<string, string>, processes: Spawned[]): Promise<{ port: number; env: Record<string, string> }> {
  const port = await freePort();
  const apiEnv = { ...env, PORT: String(port) };
  const api = spawnTs('api/main.ts', [], apiEnv, `http://127.0.0.1:${port}/healthz`);
  processes.push(api);
  await api.ready;
  return { port, env: apiEnv };
}

async function flood(env: Record<string, string>, db: Db, floodRuns: number, label: string): Promise<FloodResult> {
  const processes: Spawned[] = [];
  try {
    const { port, env: apiEnv } = await startApi(env, processes);
    await startWorkers(apiEnv, processes);
    const base = `http://127.0.0.1:${port}`;
    const aAccount = await createAccountKey(db, `flood-a-${label}`);
    const a = apiClient(base, aAccount.rawKey);
    const b = apiClient(base, (await createAccountKey(db, `flood-b-${label}`)).rawKey);
    log(`noisy neighbour (${label}): B alone, a run every ${B_EVERY_MS} ms`);
    await postAsFastAsTheyGo(a, 500); // warm-up, not measured
    await waitForAccountRuns(db, aAccount.accountId, 500);
    const idle = await postEvery(b, (posted) => posted >= 30);
    await waitForRuns(db, idle, idle.length);
    log(`noisy neighbour (${label}): A posts ${floodRuns} runs as fast as it can; B goes on`);
    const floodStart = Date.now();
    let aDone = false;
    const flooded: string[] = [];
    const aPosts = postAsFastAsTheyGo(a, floodRuns).then((runIds) => flooded.push(...runIds));
    const bPosts = postEvery(b, () => aDone);
    await aPosts;
    await waitForAccountRuns(db, aAccount.accountId, 500 + floodRuns);
    aDone = true;
    const bRuns = await bPosts;
    await waitForRuns(db, bRuns, bRuns.length);
    const aTimes = await runTimes(db, flooded);
    const bTimes = await runTimes(db, bRuns);
    const lastA = Math.max(...aTimes.map((t) => t.finished));
    const lastAny = Math.max(lastA, ...bTimes.map((t) => t.finished));
    a.close();
    b.close();
    return {
      floodRuns,
      bRuns: bRuns.length,
      bIdleQueueToStartMs: pick(summary((await runTimes(db, idle)).map((t) => t.queueToStart))),
      bFloodQueueToStartMs: pick(summary(bTimes.map((t) => t.queueToStart))),
      runDurationMsP50: summary(aTimes.map((t) => t.finished - t.started)).p50,
      aRunsPerSecond: round(floodRuns / ((lastA - floodStart) / 1000), 1),
      fleetRunsPerSecond: round((floodRuns + bRuns.length) / ((lastAny - floodStart) / 1000), 1),
    };
  } finally {
    await Promise.all(processes.map((p) => p.stop()));
  }
}

/** Posts a run every B_EVERY_MS until `done(posted so far)`; the run ids. */
async function postEvery(api: Api, done: (posted: number) => boolean): Promise<string[]> {
  const posts: Promise<string>[] = [];
  const start = performance.now();
  while (!done(posts.length)) {
    const wait = start + posts.length * B_EVERY_MS - performance.now();
    if (wait > 0) await sleep(wait);
    posts.push(api.post().then(({ runId }) => runId));
  }
  return Promise.all(posts);
}

async function weightedShares(env: Record<string, string>, db: Db, perAccount: number): Promise<NoisyNeighbour['weights']> {
  const processes: Spawned[] = [];
  const weights = [1, 1, 2];
  try {
    const { port, env: apiEnv } = await startApi(env, processes);
    const base = `http://127.0.0.1:${port}`;
    const accounts = await Promise.all(weights.map((_, i) => createAccountKey(db, `weighted-${i}`)));
    for (const [i, account] of accounts.entries()) await db.account.update({ where: { id: account.accountId }, data: { weight: weights[i]! } });
    log(`noisy neighbour (fair): three accounts of weights ${weights.join(', ')} post ${perAccount} runs each, then the workers start`);
    const clients = accounts.map((account) => apiClient(base, account.rawKey));
    const runIds = (await Promise.all(clients.map((client) => postAsFastAsTheyGo(client, perAccount)))).flat();
    await startWorkers(apiEnv, processes);
    for (const account of accounts) await waitForAccountRuns(db, account.accountId, perAccount);
    for (const client of clients) client.close();
    const started = await db.run.findMany({ where: { id: { in: runIds } }, select: { accountId: true, startedAt: true }, orderBy: { startedAt: 'asc' } });
    // While all three are backlogged: up to the moment the first of them has had all its runs started.
    const lastStart = accounts.map((account) => Math.max(...started.filter((r) => r.accountId === account.accountId).map((r) => r.startedAt!.getTime())));
    const until = Math.min(...lastStart);
    const counted = started.filter((r) => r.startedAt!.getTime() < until);
    return {
      weights,
      startedPercent: accounts.map((account) => round((counted.filter((r) => r.accountId === account.accountId).length / counted.length) * 100, 1)),
      runsCounted: counted.length,
    };
  } finally {
    await Promise.all(processes.map((p) => p.stop()));
  }
}

const pick = (s: { p50: number; p99: number }) => ({ p50: s.p50, p99: s.p99 });

async function runTimes(db: Db, runIds: string[]) {
  const rows = await db.$queryRaw<{ created: Date; started: Date; finished: Date }[]>`
    SELECT r.created_at AS created, a.started_at AS started, r.finished_at AS finished
    FROM runs r JOIN run_attempts a ON a.run_id = r.id AND a.attempt = 1 WHERE r.id = ANY(${runIds}::uuid[])`;
  return rows.map((row) => ({ queueToStart: row.started.getTime() - row.created.getTime(), started: row.started.getTime(), finished: row.finished.getTime() }));
}

/** The account's completed runs reach `n` (counted along its (account_id, seq) index, not a list of ids: polling must not load what it measures). */
async function waitForAccountRuns(db: Db, accountId: string, n: number) {
  await waitUntil(async () => (await db.run.count({ where: { accountId, status: 'completed' } })) >= n, 'the noisy-neighbour runs', 900_000, 200);
}

async function waitForRuns(db: Db, runIds: string[], n: number) {
  await waitUntil(async () => (await db.run.count({ where: { id: { in: runIds }, status: 'completed' } })) >= n, 'the noisy-neighbour runs', 900_000, 200);
}
