import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import { setTimeout as sleep } from 'node:timers/promises';
import { isDatabaseUnreachable } from '../../shared/infra/errors.js';
import type { WorkerDeps } from '../deps.js';

/**
 * A dependency that blinks is not a failed attempt. Attempts (RUN_MAX_ATTEMPTS) are for what goes
 * wrong with a run — a provider's error, a dropped stream — not for Postgres being unreachable
 * while a worker claims or finishes one: those are waited out, up to RUN_DEPENDENCY_WAIT_MS, and
 * only then does the run fail, with `dependency_unavailable`.
 */
export const DEPENDENCY_UNAVAILABLE = 'dependency_unavailable';

/** Claiming the run failed because Postgres is unreachable: put the job back (delayed, no attempt spent) or give up past the bound. */
export async function waitOutClaimFailure(deps: WorkerDeps, job: Job, token: string | undefined, err: unknown): Promise<never> {
  if (!isDatabaseUnreachable(err)) throw err;
  const since = typeof job.data.waitingForDependenciesSince === 'number' ? job.data.waitingForDependenciesSince : Date.now();
  const waited = Date.now() - since;
  if (waited > deps.config.RUN_DEPENDENCY_WAIT_MS) {
    throw new UnrecoverableError(`${DEPENDENCY_UNAVAILABLE}: Postgres was unreachable for ${Math.round(waited / 1000)} s`);
  }
  const delayMs = Math.min(5_000, 500 * 2 ** Math.min(4, Math.floor(waited / 2_000)));
  deps.logger.warn('Postgres is unreachable; the run waits without spending an attempt', { waitedMs: waited, retryInMs: delayMs });
  await job.updateData({ ...job.data, waitingForDependenciesSince: since });
  if (token) await job.moveToDelayed(Date.now() + delayMs, token);
  throw new DelayedError();
}

/** Runs `write` (a run's finishing statement), retrying while Postgres is unreachable, up to the bound. */
export async function retryWhileDatabaseUnreachable<T>(deps: WorkerDeps, signal: AbortSignal | undefined, write: () => Promise<T>): Promise<T> {
  const started = Date.now();
  for (let delay = 250; ; delay = Math.min(delay * 2, 5_000)) {
    try {
      return await write();
    } catch (err) {
      if (!isDatabaseUnreachable(err) || Date.now() - started > deps.config.RUN_DEPENDENCY_WAIT_MS || signal?.aborted) throw err;
      deps.logger.warn('Postgres is unreachable while finishing a run; retrying', { error: (err as Error).message, retryInMs: delay });
      await sleep(delay);
    }
  }
}
