import { endRun } from '../../shared/runs/transitions/endUnheld.js';
import { appendClosing, closingChunks, type StreamOptions } from '../../shared/stream/events.js';
import type { Logger } from '../../shared/infra/logger.js';
import type { Metrics } from '../../shared/infra/metrics.js';
import type { RedisClient } from '../../shared/infra/redis.js';
import { RUNNABLE_STATUSES } from '../../shared/runs/lifecycle.js';
import type { Sql } from '../../shared/infra/sql.js';

/**
 * A cancel whose run's worker never acted on it (frozen or dead before its heartbeat saw the
 * request) ends the run here: whoever meets the request next — another worker handed the job, or
 * the sweep — ends it cancelled, with its cleanup, while the run is still on the attempt it saw
 * (a frozen worker's late writes are fenced). Without this, such a run stayed queued with the
 * request set: never claimable, re-queued by every sweep, counted as active.
 */
export async function endRequestedCancel(
  deps: { sql: Sql; redis: RedisClient; streamOptions: StreamOptions; logger: Logger; metrics: Metrics },
  run: { id: string; attempt: number; status: string },
): Promise<boolean> {
  const { id: runId, attempt } = run;
  const ended = await endRun(deps.sql, runId, { status: 'cancelled', reason: 'cancelled', from: [...RUNNABLE_STATUSES], attempt });
  if (!ended) return false;
  // A run that never started has an empty stream: it gets its start too.
  const closing = [...(run.status === 'queued' ? [{ type: 'start' as const }] : []), ...closingChunks({ status: 'cancelled' })];
  await appendClosing(deps.redis, deps.streamOptions, runId, closing).catch((err: Error) =>
    deps.logger.warn('could not announce the cancellation on the stream', { runId, error: err.message }),
  );
  deps.metrics.runsFinished.inc({ status: 'cancelled', model: 'unknown' });
  deps.logger.info('ended a run whose cancel its worker never acted on', { runId, attempt });
  return true;
}
