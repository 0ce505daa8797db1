import { findFailedRuns, replayRun } from '../shared/replay.js';
import { AppError } from '../shared/errors.js';
import type { ApiDeps } from './deps.js';
import type { ReplayBulkBody } from './schemas.js';

export async function replayOne(deps: ApiDeps, runId: string) {
  const reopened = await replayRun(deps, runId).catch((err: unknown) => {
    if (err instanceof AppError) throw err;
    throw new AppError(
      'queue_unavailable',
      503,
      'The run was reopened but could not be queued yet; the sweep will queue it.',
      'Check Redis; the run will start once it is reachable.',
      { retryAfterSeconds: 5 },
    );
  });
  deps.logger.info('run replayed', { runId, episode: reopened.episode });
  return { runId, status: 'queued' as const, attempt: reopened.attempt };
}

/** Replays the failed runs matching the filters (oldest first), or with dryRun lists them. */
export async function replayFailedRuns(deps: ApiDeps, body: ReplayBulkBody) {
  const runs = await findFailedRuns(deps.db, {
    since: body.since ? new Date(body.since) : undefined,
    until: body.until ? new Date(body.until) : undefined,
    model: body.model,
    accountId: body.accountId,
    limit: body.limit,
  });
  const results = [];
  for (const run of runs) {
    if (body.dryRun) {
      results.push({ runId: run.id, model: run.model, replayed: false, error: null });
      continue;
    }
    try {
      await replayOne(deps, run.id);
      results.push({ runId: run.id, model: run.model, replayed: true, error: null });
    } catch (err) {
      results.push({ runId: run.id, model: run.model, replayed: false, error: err instanceof AppError ? err.code : 'internal_error' });
    }
  }
  return { dryRun: body.dryRun, runs: results };
}
