import calculateSlot from 'cluster-key-slot';

/** Every queue runyard uses, named once. */
export const QUEUES = { runs: 'runs', maintenance: 'maintenance' } as const;
export const RUN_JOB_NAME = 'run';
export const SWEEP_JOB_NAME = 'sweep';
export const SWEEP_SCHEDULER_ID = 'stale-run-sweep';
export const RETENTION_JOB_NAME = 'retention';
export const RETENTION_SCHEDULER_ID = 'retention';

/** On a cluster every key of a BullMQ queue must share a slot: the queue's name is its hash tag. */
export const maintenanceQueueName = (cluster: boolean): string => (cluster ? `{${QUEUES.maintenance}}` : QUEUES.maintenance);

const CLUSTER_SLOTS = 16_384;

/**
 * The name of run queue shard `index` of `shards`. One shard on a single node keeps the name runyard
 * always had (`runs`). Otherwise every shard's name is a hash tag (all of a BullMQ queue's keys must
 * share a slot) chosen so that shard i's slot falls in the i-th of `shards` equal slices of the 16,384
 * slots: with the slots split evenly over the masters (as `redis-cli --cluster create` does), shards
 * ≥ masters puts queues on every master. The names depend on the shard count: after changing it, the
 * runs still queued under the old names are re-queued by the sweep (README, Redis Cluster).
 */
export function runQueueName(index: number, shards: number, cluster: boolean): string {
  if (shards === 1 && !cluster) return QUEUES.runs;
  const low = Math.floor((index * CLUSTER_SLOTS) / shards);
  const high = Math.floor(((index + 1) * CLUSTER_SLOTS) / shards);
  for (let salt = 0; ; salt++) {
    const tag = salt === 0 ? `${QUEUES.runs}-${index}` : `${QUEUES.runs}-${index}-${salt}`;
    const slot = calculateSlot(tag);
    if (slot >= low && slot < high) return `{${tag}}`;
  }
}

/** The shard a run belongs to, for its whole life (first attempt, retries, continuations, replays). */
export function shardOfRun(runId: string, shards: number): number {
  return shards === 1 ? 0 : parseInt(runId.replace(/-/g, '').slice(-8), 16) % shards;
}
