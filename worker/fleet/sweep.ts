import { ModelCallLedger } from '../attempt/modelCallLedger.js';
import { deleteDeliveredEvents } from '../../shared/webhooks/eventStore.js';
import type { Config } from '../../shared/infra/config.js';
import { Prisma, type Db } from '../../shared/infra/db.js';
import type { Logger } from '../../shared/infra/logger.js';
import type { Metrics } from '../../shared/infra/metrics.js';
import type { Sql } from '../../shared/infra/sql.js';
import { cleanupRun, type CleanupReason } from '../../shared/runs/compensations.js';
import { endRun } from '../../shared/runs/transitions/endUnheld.js';
import { requeueLostRun } from '../../shared/runs/transitions/requeueLost.js';
import { DEPENDENCY_UNAVAILABLE } from './dependencyWaits.js';
import { endRequestedCancel } from './requestedCancels.js';
import { RUNNABLE_STATUSES, TERMINAL_STATUSES, WAITING_STATUS } from '../../shared/runs/lifecycle.js';
import { closedCallChunks } from '../../shared/runs/waitingRuns.js';
import { endWaitingRun } from '../../shared/runs/transitions/endWaiting.js';
import { startHeldMessages } from '../../shared/chats/promotion.js';
import { forgetLapsedWatches } from '../../shared/chats/chatEvents.js';
import { deleteExpiredKeys } from '../../shared/accounts/apiKeys.js';
import { dropLapsedReservations } from '../../shared/accounts/spendReservations.js';
import { appendClosing, closingChunks, type StreamOptions } from '../../shared/stream/events.js';
import type { RedisClient } from '../../shared/infra/redis.js';
import type { RunQueues } from '../../shared/infra/runQueues.js';
import type { RunAdmission } from '../../shared/flow/runAdmission.js';

export type SweepDeps = {
  config: Config;
  db: Db;
  sql: Sql;
  runQueues: RunQueues;
  admission: RunAdmission;
  logger: Logger;
  metrics: Metrics;
  redis: RedisClient;
  streamOptions: StreamOptions;
};
export type SweepReport = {
  requeued: number;
  failed: number;
  cancelled: number;
  cleanedUp: number;
  expiredKeysDeleted: number;
  timedOut: number;
  promoted: number;
};

const BATCH = 500;
const EXPIRED_KEYS_PER_PASS = 10_000;

// Each open run's row, looked up by primary key. A plain join let the planner scan all of runs
// instead (runs has no index on status, and with stale statistics it expects few matching runs or
// a large open_runs): 5–15 ms of Postgres per sweep on a 30,000-run bench database, growing with
// the history. LIMIT 1 keeps the subquery from being flattened into such a join, so the sweep's
// cost follows the backlog.
const OPEN_RUN = Prisma.sql`SELECT r.id, r.attempt, r.status, r.error_code, r.heartbeat_at, r.created_at, r.finished_at, r.cancel_requested_at FROM runs r WHERE r.id = o.run_id LIMIT 1`;
const LIVE_JOB_STATES = new Set(['active', 'waiting', 'waiting-children', 'delayed', 'prioritized', 'paused']);

/**
 * The fleet-wide sweep (a BullMQ job scheduler runs it on one worker at a time). It looks only at
 * open runs (open_runs: provisioned and not yet cleaned up), so its cost follows the backlog, not
 * the history:
 * 1. queued or running runs with no heartbeat for RUN_STALE_AFTER_MS: those with a cancel request
 *    end cancelled (their worker never acted on it); those with no live job — it vanished or died
 *    for good — are re-queued while attempts remain, else failed as stalled;
 * 2. ended runs whose compensating cleanup has not happened (ended by an older release, which
 *    cleaned up in a separate step) are cleaned up;
 * 3. expired ephemeral keys are deleted.
 */
export async function sweepStaleRuns(deps: SweepDeps): Promise<SweepReport> {
  const report: SweepReport = { requeued: 0, failed: 0, cancelled: 0, cleanedUp: 0, expiredKeysDeleted: 0, timedOut: 0, promoted: 0 };
  await recoverStaleRuns(deps, report);
  await failExpiredWaits(deps, report);
  await finishMissedCleanups(deps, report);
  await promoteHeldMessages(deps, report);
  // Delivered webhook events are kept WEBHOOK_RETENTION_MS (for the delivery log), then deleted with their attempts.
  const retainedSince = new Date(Date.now() - deps.config.WEBHOOK_RETENTION_MS);
  await deleteDeliveredEvents(deps.db, retainedSince);
  // A bounded batch a pass: a backlog of expired keys (after an outage, or a bulk import) goes over a few passes, in short transactions.
  report.expiredKeysDeleted = await deleteExpiredKeys(deps.db, EXPIRED_KEYS_PER_PASS);
  // Nobody follows these chats' events any more (SPEC section 19): their triggers stop writing them.
  await forgetLapsedWatches(deps.db);
  // Spend reservations whose worker died with them (SPEC section 21): their lease is over.
  await dropLapsedReservations(deps.db);
  if (report.requeued || report.failed || report.cancelled || report.cleanedUp || report.timedOut || report.promoted)
    deps.logger.info('sweep recovered runs', report);
  return report;
}

/**
 * Queued messages of idle chats: held back when their chat's run ended while the account was over a
 * spend limit (SPEC section 14: they wait, they are not dropped). Promoted once the period rolled
 * over or the limit was raised; the promotion function checks again under the chat's lock.
 */
async function promoteHeldMessages(deps: SweepDeps, report: SweepReport): Promise<void> {
  report.promoted = await startHeldMessages(deps.db, BATCH);
}

async function recoverStaleRuns(deps: SweepDeps, report: SweepReport): Promise<void> {
  const { db, sql, config, runQueues, logger, metrics } = deps;
  const staleBefore = new Date(Date.now() - config.RUN_STALE_AFTER_MS);
  const stale = await db.$queryRaw<{ id: string; attempt: number; status: string; cancel_requested: boolean }[]>`
    SELECT r.id::text, r.attempt, r.status::text, r.cancel_requested_at IS NOT NULL AS cancel_requested FROM open_runs o CROSS JOIN LATERAL (${OPEN_RUN}) r
    WHERE r.status = ANY(${[...RUNNABLE_STATUSES]}::run_status[]) AND COALESCE(r.heartbeat_at, r.created_at) < ${staleBefore}
    ORDER BY COALESCE(r.heartbeat_at, r.created_at)
    LIMIT ${BATCH}`;
  for (const run of stale) {
    const runQueue = runQueues.forRun(run.id);
    if (run.cancel_requested) {
      // Its worker never acted on the cancel (frozen or dead): it ends cancelled, whatever its job's state.
      if (await endRequestedCancel(deps, run)) {
        report.cancelled++;
        metrics.sweepRecovered.inc({ action: 'cancelled' });
      }
      continue;
    }
    const state = await runQueue.getJobState(run.id);
    // A run waiting its account's turn in the fair scheduler has no job yet, and is not lost.
    if (LIVE_JOB_STATES.has(state) || (await deps.admission.holds(run.id))) continue;
    if (state !== 'failed' && run.attempt < config.RUN_MAX_ATTEMPTS) {
      // The job is gone (Redis lost it, or it was removed): put the run back in the queue.
      if (state === 'completed') await (await runQueue.getJob(run.id))?.remove();
      if (await requeueLostRun(deps, run.id, run.attempt)) {
        report.requeued++;
        metrics.sweepRecovered.inc({ action: 'requeued' });
        logger.warn('re-queued a run whose job was lost', { runId: run.id, lastAttempt: run.attempt, jobState: state });
      }
      continue;
    }
    // A job that gave up waiting for Postgres says so; anything else that ended the job stalled.
    const failedReason = state === 'failed' ? ((await runQueue.getJob(run.id))?.failedReason ?? '') : '';
    const error = failedReason.startsWith(DEPENDENCY_UNAVAILABLE)
      ? { code: DEPENDENCY_UNAVAILABLE, message: failedReason.slice(DEPENDENCY_UNAVAILABLE.length + 2), retryable: true }
      : { code: 'stalled', message: 'the run stopped making progress (its worker died or it stalled too often)', retryable: true };
    // Its last worker may have died mid-call: that call is charged before the run ends.
    await new ModelCallLedger(deps.redis, sql, config.QUEUE_PREFIX, logger)
      .chargeLost(run.id)
      .catch((err: Error) => logger.warn('could not charge a lost model call', { runId: run.id, error: err.message }));
    const failed = await endRun(sql, run.id, { status: 'failed', reason: 'stalled', from: ['queued', 'running'], attempt: run.attempt, error });
    if (failed) {
      report.failed++;
      metrics.sweepRecovered.inc({ action: 'failed' });
      metrics.runsFinished.inc({ status: 'failed', model: 'unknown' });
      logger.error('failed a stalled run', { runId: run.id, jobState: state });
    }
  }
}

const TIMED_OUT_CALL = 'No result arrived within RUN_ACTION_TIMEOUT_MS.';

/** Runs parked in requires_action for longer than RUN_ACTION_TIMEOUT_MS fail with tool_results_timeout (cleanup as for any failure). */
async function failExpiredWaits(deps: SweepDeps, report: SweepReport): Promise<void> {
  const { db, sql, config, logger, metrics } = deps;
  const waitingSince = new Date(Date.now() - config.RUN_ACTION_TIMEOUT_MS);
  const expired = await db.$queryRaw<{ id: string; attempt: number }[]>`
    SELECT r.id::text, r.attempt FROM open_runs o CROSS JOIN LATERAL (${OPEN_RUN}) r
    WHERE r.status = ${WAITING_STATUS}::run_status AND r.heartbeat_at < ${waitingSince}
    LIMIT ${BATCH}`;
  for (const run of expired) {
    const error = { code: 'tool_results_timeout', message: `no tool results arrived within ${config.RUN_ACTION_TIMEOUT_MS} ms` };
    const { ended, pending } = await endWaitingRun(db, sql, run.id, run.attempt, {
      status: 'failed',
      reason: 'action_timeout',
      closedWith: TIMED_OUT_CALL,
      error,
    });
    if (!ended) continue;
    report.timedOut++;
    metrics.sweepRecovered.inc({ action: 'action_timeout' });
    metrics.runsFinished.inc({ status: 'failed', model: 'unknown' });
    logger.warn('failed a run that waited too long for tool results', { runId: run.id });
    const closing = [...closedCallChunks(pending, TIMED_OUT_CALL), ...closingChunks({ status: 'failed', error: { ...error, retryable: false } })];
    await appendClosing(deps.redis, deps.streamOptions, run.id, closing).catch(() => {});
  }
}

async function finishMissedCleanups(deps: SweepDeps, report: SweepReport): Promise<void> {
  const { db, sql, logger, metrics } = deps;
  // Every path that ends a run cleans up in the same statement, so this only finds runs ended by an
  // older release. Grace of a few seconds so it never races a live cleanup.
  const rows = await db.$queryRaw<{ id: string; status: CleanupReason; error_code: string | null }[]>`
    SELECT r.id::text, r.status::text AS status, r.error_code FROM open_runs o CROSS JOIN LATERAL (${OPEN_RUN}) r
    WHERE r.status = ANY(${[...TERMINAL_STATUSES]}::run_status[]) AND COALESCE(r.finished_at, r.heartbeat_at, r.created_at) < now() - interval '5 seconds'
    LIMIT ${BATCH}`;
  for (const row of rows) {
    const reason: CleanupReason = row.error_code === 'stalled' ? 'stalled' : row.status;
    const outcome = await cleanupRun(sql, logger, row.id, reason, { onFailure: () => metrics.cleanupFailures.inc() }).catch(() => null);
    if (outcome?.performed) {
      report.cleanedUp++;
      metrics.sweepRecovered.inc({ action: 'cleaned_up' });
    }
  }
}
