import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { percentile, round } from './stats.js';
import { spawnTs } from './processes.js';
import { cpuMsPerItem, cpuSnapshot } from './cpu.js';
import { N, WORKERS, CONCURRENCY, REDIS_URL, PREFIX } from './options.js';
import { waitUntil } from './support.js';

/** Phase 1: the baseline — raw BullMQ no-op jobs on the same number of workers and concurrency. */

export const RAW_ROUNDS = 5;

/**
 * Phase 1: bare BullMQ, no-op jobs, the same number of worker processes and concurrency. One
 * short burst swung by ±40% from run to run (JIT warm-up, GC, the other processes on the two
 * cores), so a warm-up round comes first and the figure is the median of RAW_ROUNDS rounds of N jobs.
 */
export async function rawBullmqThroughput(redis: Redis): Promise<{ median: number; rounds: number[]; cpuMsPerJob: Record<string, number> }> {
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
