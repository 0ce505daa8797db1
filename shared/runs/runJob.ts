import { z } from 'zod';
import type { JobsOptions } from 'bullmq';
import type { Config } from '../infra/config.js';
import { traceparentOf } from '../infra/tracing.js';
import { PRIORITIES } from '../flow/priorities.js';

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
