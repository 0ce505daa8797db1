import { opts } from './options.js';
import { createServer } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Db } from '../../shared/infra/db.js';

/** What every bench phase waits with: a free port, --json output, polling until a condition, waiting for runs by their insertion order. */

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** --json: the results as JSON, to a file or (`--json -`) to stdout. */
export async function writeJson(results: unknown) {
  if (opts.json === undefined) return;
  const text = JSON.stringify(results, null, 2);
  if (opts.json === '' || opts.json === '-') process.stdout.write(`${text}\n`);
  else await writeFile(opts.json, text);
}

export async function waitUntil(probe: () => Promise<boolean>, what: string, timeoutMs = 600_000, everyMs = 50) {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/**
 * Starts `count` tasks at `perSecond`, on a clock (open loop, as callers do: whatever those already
 * started are doing), and waits for them all; their results in the order they started.
 */
export async function onAClock<T>(count: number, perSecond: number, task: () => Promise<T>): Promise<T[]> {
  const started: Promise<T>[] = [];
  const start = performance.now();
  for (let i = 0; i < count; i++) {
    const wait = start + (i * 1000) / perSecond - performance.now();
    if (wait > 0) await sleep(wait);
    started.push(task());
  }
  return Promise.all(started);
}

/** Where the next phase's runs start: runs.seq is their insertion order. */
export async function lastRunSeq(db: Db): Promise<bigint> {
  return (await db.run.aggregate({ _max: { seq: true } }))._max.seq ?? 0n;
}

/**
 * Waits until `n` runs after `afterSeq` are completed. It polls an index range rather than a list
 * of the phase's run ids: a poll must not load the database it measures (a 10,000-id IN list is a
 * sequential scan of runs, several times a second).
 */
export async function waitForCompletedRuns(db: Db, afterSeq: bigint, n: number, what: string, everyMs = 50) {
  await waitUntil(async () => (await db.run.count({ where: { seq: { gt: afterSeq }, status: 'completed' } })) >= n, what, 900_000, everyMs);
}
