import calculateSlot from 'cluster-key-slot';
import { z } from 'zod';
import type { JobsOptions } from 'bullmq';
import type { Config } from './config.js';
import { traceparentOf } from './tracing.js';
import { PRIORITIES } from '../flow/priorities.js';

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

const sealedSecretSchema = z.object({ v: z.literal(1), iv: z.string(), tag: z.string(), data: z.string() });

/**
 * The run job's payload: ids only, the run's ephemeral key sealed with RUNYARD_SECRET, and — when
 * traced — the trace context of what queued the job (the POST, a continuation, a replay) and the
 * run's trace id, which Bull Board shows with the link to the run's timeline.
 */
export const runJobSchema = z.object({
  runId: z.uuid(),
  accountId: z.uuid(),
  keyId: z.uuid(),
  ephemeralKey: sealedSecretSchema,
  /** The run's priority within its account (SPEC section 15); jobs queued by an older release have none: normal. */
  priority: z.enum(PRIORITIES).optional(),
  traceparent: z.string().max(100).optional(),
  timeline: z.string().max(200).optional(),
});
export type RunJobData = z.infer<typeof runJobSchema>;

/** The timeline page of a run (SPEC section 16), on the api's admin surface. */
export const timelinePath = (runId: string) => `/admin/runs/${runId}`;

/** What a run's job records beside its key: the context that queued it (its traceparent, when traced) and the run's timeline page. */
export function jobContext(runId: string): Pick<RunJobData, 'traceparent' | 'timeline'> {
  const traceparent = traceparentOf();
  return { ...(traceparent ? { traceparent } : {}), timeline: timelinePath(runId) };
}

export const RUN_BACKOFF_TYPE = 'run-backoff';

export function runJobOptions(config: Config, runId: string): JobsOptions {
  return {
    jobId: runId,
    attempts: config.RUN_MAX_ATTEMPTS,
    backoff: { type: RUN_BACKOFF_TYPE, delay: config.RUN_RETRY_BASE_MS },
    removeOnComplete: { age: 24 * 3600, count: 10_000 },
    removeOnFail: { age: 7 * 24 * 3600 },
  };
}

/** Exponential backoff that never retries sooner than a provider's Retry-After asked for. */
export function runBackoffDelay(attemptsMade: number, baseMs: number, retryAfterMs?: number): number {
  const exponential = baseMs * 2 ** Math.max(0, attemptsMade - 1);
  const jitter = Math.floor(Math.random() * baseMs * 0.2);
  return Math.max(exponential + jitter, retryAfterMs ?? 0);
}
