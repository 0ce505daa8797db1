import { setTimeout as sleep } from 'node:timers/promises';
import { endRun } from '../../shared/runs/transitions/endUnheld.js';
import { requestCancel } from '../../shared/runs/transitions/requestCancel.js';
import { cancelChannel, closingChunks } from '../../shared/stream/events.js';
import { isTerminalStatus, TransitionRefused } from '../../shared/runs/lifecycle.js';
import type { ApiDeps } from '../deps.js';
import type { Caller } from '../http/http.js';
import { getRunForCaller } from './readRuns.js';
import { modelLabel } from '../../shared/agent/models.js';
import { pubsub } from '../../shared/infra/redis.js';
import { WAITING_STATUS } from '../../shared/runs/lifecycle.js';
import { closedCallChunks } from '../../shared/runs/waitingRuns.js';
import { endWaitingRun } from '../../shared/runs/transitions/endWaiting.js';

const CANCELLED_CALL = 'The run was cancelled before this tool call was answered.';

const WAIT_FOR_WORKER_MS = 1_500;

/**
 * POST /api/chat/runs/{runId}/cancel, and a chat's interrupt (with the result its parked calls get).
 * A queued run is cancelled here and now (with its cleanup, in one statement; its job removed). A running one is
 * flagged and its worker told over pub/sub; the worker stops the model stream, keeps the partial
 * answer marked interrupted and ends the run cancelled. The answer waits briefly for that.
 */
export async function cancelRun(deps: ApiDeps, caller: Caller, runId: string, opts: { closedWith?: string } = {}): Promise<{ runId: string; status: string }> {
  const closedWith = opts.closedWith ?? CANCELLED_CALL;
  for (;;) {
    const run = await getRunForCaller(deps, caller, runId);
    if (isTerminalStatus(run.status)) throw new TransitionRefused('endUnheld', runId, run.status, `The run already finished (${run.status}).`);
    if (run.status === 'queued') {
      // Cancelled and cleaned up in one statement; false if a worker took it meanwhile.
      if (!(await endRun(deps.sql, runId, { status: 'cancelled', reason: 'cancelled', from: ['queued'] }))) continue;
      await deps.admission.withdraw(runId).catch(() => {});
      await announceCancelled(deps, runId);
      deps.metrics.runsFinished.inc({ status: 'cancelled', model: modelLabel(run.model) });
      deps.logger.info('queued run cancelled', { runId });
      return { runId, status: 'cancelled' };
    }
    if (run.status === WAITING_STATUS) {
      // No worker holds a parked run: its pending calls are closed and it ends here, in one statement.
      const { ended, pending } = await endWaitingRun(deps.db, deps.sql, runId, run.attempt, {
        status: 'cancelled',
        reason: 'cancelled',
        closedWith,
      });
      if (!ended) continue;
      await deps.streams
        .end(runId, [...closedCallChunks(pending, closedWith), ...closingChunks({ status: 'cancelled' })])
        .catch((err: Error) => deps.logger.warn('could not announce the cancellation on the stream', { error: err.message }));
      deps.metrics.runsFinished.inc({ status: 'cancelled', model: modelLabel(run.model) });
      deps.logger.info('waiting run cancelled', { runId, closedCalls: pending.length });
      return { runId, status: 'cancelled' };
    }
    if (!(await requestCancel(deps.sql, runId))) continue;
    await pubsub.publish(deps.redis, cancelChannel(deps.config.QUEUE_PREFIX), runId);
    deps.logger.info('cancel requested for a running run', { runId });
    const deadline = Date.now() + WAIT_FOR_WORKER_MS;
    let status: string = run.status;
    while (Date.now() < deadline && status === 'running') {
      await sleep(50);
      status = (await getRunForCaller(deps, caller, runId)).status;
    }
    return { runId, status };
  }
}

/** Ends the event stream of a run cancelled before a worker ran it, so listeners stop waiting. */
async function announceCancelled(deps: ApiDeps, runId: string): Promise<void> {
  await deps.streams
    .end(runId, [{ type: 'start' }, ...closingChunks({ status: 'cancelled' })])
    .catch((err: Error) => deps.logger.warn('could not announce the cancellation on the stream', { error: err.message }));
}
