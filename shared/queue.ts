import { z } from 'zod';
import type { JobsOptions } from 'bullmq';
import type { Config } from './config.js';

/** Every queue runyard uses, named once. */
export const QUEUES = { runs: 'runs', maintenance: 'maintenance' } as const;
export const RUN_JOB_NAME = 'run';
export const SWEEP_JOB_NAME = 'sweep';
export const SWEEP_SCHEDULER_ID = 'stale-run-sweep';

const sealedSecretSchema = z.object({ v: z.literal(1), iv: z.string(), tag: z.string(), data: z.string() });

/** The run job's payload: ids only, and the run's ephemeral key sealed with RUNYARD_SECRET. */
export const runJobSchema = z.object({
  runId: z.uuid(),
  accountId: z.uuid(),
  keyId: z.uuid(),
  ephemeralKey: sealedSecretSchema,
});
export type RunJobData = z.infer<typeof runJobSchema>;

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
