import { expect } from 'chai';
import { shardOfRun } from '../../shared/infra/queue.js';
import { createAccount } from './factories.js';
import { startApi, startWorker, waitFor } from './harness.js';
import { startRunOk } from './runs.js';

const words = (n: number) => Array.from({ length: n }, (_, i) => `w${i}`).join(' ');

/**
 * One worker process with WORKER_CONCURRENCY=4 over `shards` queue shards (on the Redis `env` names):
 * a concurrent burst of slow runs, then more until every shard has at least two. Never more than four
 * run at once, every run completes, and each shard's queue completed exactly its own runs (by job id).
 */
export async function expectOneBudgetAcrossShards(env: Record<string, string>, shards: number): Promise<void> {
  const settings = { ...env, QUEUE_SHARDS: String(shards), WORKER_CONCURRENCY: '4', LOCAL_MODEL_DELAY_MS: '20' };
  const api = startApi(settings);
  const worker = await startWorker(api.prefix, settings);
  try {
    const bob = await createAccount(api.deps.db);
    const runIds = await Promise.all(Array.from({ length: 30 }, (_, i) => startRunOk(api.app, bob.key, { prompt: `burst ${i} ${words(8)}` })));
    const perShardPosted = () => Array.from({ length: shards }, (_, shard) => runIds.filter((id) => shardOfRun(id, shards) === shard).length);
    while (perShardPosted().some((count) => count < 2)) runIds.push(await startRunOk(api.app, bob.key, { prompt: `more ${runIds.length} ${words(8)}` }));
    let most = 0;
    await waitFor(
      async () => {
        most = Math.max(most, await api.deps.db.run.count({ where: { id: { in: runIds }, status: 'running' } }));
        return (await api.deps.db.run.count({ where: { id: { in: runIds }, status: 'completed' } })) === runIds.length;
      },
      { what: 'every run to complete', timeoutMs: 60_000, intervalMs: 20 },
    );
    expect(most, 'runs running at once').to.be.within(1, 4);
    // A job is moved to completed just after its run's row says so; and the worker's sweep may queue
    // other tests' abandoned runs (the database is shared) on these shards: count this test's jobs only.
    const ours = new Set(runIds);
    const completedPerShard = () =>
      Promise.all(
        api.deps.runQueues.all.map(async (queue) =>
          (await queue.getCompleted(0, -1))
            .filter((job) => ours.has(job.id!))
            .map((job) => job.id!)
            .sort(),
        ),
      );
    const expected = Array.from({ length: shards }, (_, shard) => runIds.filter((id) => shardOfRun(id, shards) === shard).sort());
    let perShard: string[][] = [];
    await waitFor(async () => (perShard = await completedPerShard()).flat().length === runIds.length, {
      what: 'every run’s job to be completed',
      timeoutMs: 15_000,
    });
    expect(perShard, 'completed jobs per shard').to.deep.equal(expected);
  } finally {
    await worker.close(1_000);
    await api.close();
  }
}
