import { findFailedRuns, ReplayNotQueued, replayRun, type FailedRunFilter } from '../../shared/runs/replays.js';
import { traceIdOf } from '../../shared/infra/tracing.js';
import { isRunId, runNotFound } from '../runs/readRuns.js';
import { AppError } from '../../shared/infra/errors.js';
import type { RunStatus } from '../../shared/runs/lifecycle.js';
import { runsWithStatus } from '../runs/runsWithStatus.js';
import type { ApiDeps } from '../deps.js';

/**
 * What an operator does to runs, once for both doors: the admin HTTP routes and the CLI. Same
 * filters, same errors (`<code>: <message>`), same JSON.
 */

export type OperatorRunFilter = { status?: RunStatus; since?: Date; limit: number };

/** Runs of every account, newest first. */
export async function listRunsForOperator(deps: Pick<ApiDeps, 'db'>, filter: OperatorRunFilter) {
  const rows = await deps.db.run.findMany({
    where: { ...(filter.status ? runsWithStatus(filter.status) : {}), ...(filter.since ? { createdAt: { gte: filter.since } } : {}) },
    orderBy: { seq: 'desc' },
    take: filter.limit,
    select: { id: true, accountId: true, status: true, model: true, attempt: true, createdAt: true, finishedAt: true, errorCode: true, traceparent: true },
  });
  return rows.map(({ id, traceparent, ...rest }) => ({ runId: id, ...rest, traceId: traceIdOf(traceparent) }));
}

export async function replayOne(deps: ApiDeps, runId: string) {
  if (!isRunId(runId)) throw runNotFound();
  const reopened = await replayRun(deps, runId).catch((err: unknown) => {
    if (!(err instanceof ReplayNotQueued)) throw err;
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

export type ReplaySelection = { runIds: string[] } | { failed: FailedRunFilter };
export type ReplayOutcome = { runId: string; model: string | null; replayed: boolean; error: string | null };

/** Replays the given runs, or the failed runs matching the filter (oldest first); with dryRun lists them. */
export async function replayRuns(
  deps: ApiDeps,
  selection: ReplaySelection,
  opts: { dryRun: boolean; onEach?: (outcome: ReplayOutcome, total: number) => void },
): Promise<{ dryRun: boolean; runs: ReplayOutcome[] }> {
  const targets = 'runIds' in selection ? selection.runIds.map((id) => ({ id, model: null })) : await findFailedRuns(deps.db, selection.failed);
  const runs: ReplayOutcome[] = [];
  for (const target of targets) {
    let outcome: ReplayOutcome = { runId: target.id, model: target.model, replayed: false, error: null };
    if (!opts.dryRun) {
      try {
        await replayOne(deps, target.id);
        outcome = { ...outcome, replayed: true };
      } catch (err) {
        outcome = { ...outcome, error: err instanceof AppError ? `${err.code}: ${err.message}` : 'internal_error: the replay failed' };
      }
    }
    runs.push(outcome);
    opts.onEach?.(outcome, targets.length);
  }
  return { dryRun: opts.dryRun, runs };
}
