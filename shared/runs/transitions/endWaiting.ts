import { cleanupCtes, type CleanupReason } from '../compensations.js';
import type { Db } from '../../infra/db.js';
import { sqlList, TRANSITIONS } from '../lifecycle.js';
import { statement, type Sql } from '../../infra/sql.js';
import { pendingCalls, stepParts, type PendingToolCall } from '../../agent/steps.js';
import { episodeSteps } from '../waitingRuns.js';

// Ends a parked run (cancelled by its caller, or failed by the sweep after RUN_ACTION_TIMEOUT_MS)
// in one statement: its pending calls closed with a result ($4, into the last step $5), the
// assistant message of its steps so far ($6, interrupted), its cleanup. Only while it is still
// parked on the attempt the caller read ($3): a continuation accepted meanwhile wins.
const END_WAITING_RUN = statement(
  'end_waiting_run',
  `WITH ended AS (
     UPDATE runs SET status = $2::text::run_status, finished_at = now(), heartbeat_at = now(),
       finish_reason = CASE WHEN $2::text = 'cancelled' THEN 'cancelled' ELSE NULL END,
       cancel_requested_at = CASE WHEN $2::text = 'cancelled' THEN now() ELSE cancel_requested_at END,
       error_code = $7, error_message = $8, error_retryable = CASE WHEN $7::text IS NULL THEN NULL ELSE false END
     WHERE id = $1::uuid AND status IN (${sqlList(TRANSITIONS.endWaiting.from)}) AND attempt = $3::int AND $2::text IN (${sqlList(TRANSITIONS.endWaiting.to)})
     RETURNING id, account_id, session_id, episode, chat_id, attempt, model
   ), closed_calls AS (
     UPDATE run_steps s SET results = s.results || $4::jsonb FROM ended e WHERE s.run_id = e.id AND s.episode = e.episode AND s.step = $5::int
   ), message AS (
     INSERT INTO messages (id, chat_id, run_id, role, parts, model, attempt, interrupted)
     SELECT gen_random_uuid()::text, e.chat_id, e.id, 'assistant', $6::jsonb, e.model, e.attempt, true FROM ended e
     ON CONFLICT (run_id, attempt) DO NOTHING
   ), ${cleanupCtes('ended', '$9')}
   SELECT (SELECT count(*) FROM ended)::int AS ended`,
);

export type WaitingRunEnd = {
  status: (typeof TRANSITIONS.endWaiting.to)[number];
  reason: CleanupReason;
  closedWith: string;
  error?: { code: string; message: string };
};

/**
 * Ends a run parked in requires_action: the calls it waits on get `closedWith` as their error result,
 * persisted in its last step and in the assistant message; false if it was no longer parked.
 */
export async function endWaitingRun(
  db: Pick<Db, '$queryRaw'>,
  sql: Sql,
  runId: string,
  attempt: number,
  end: WaitingRunEnd,
): Promise<{ ended: boolean; pending: PendingToolCall[] }> {
  const steps = await episodeSteps(db, runId);
  const last = steps.at(-1);
  const pending = last ? pendingCalls(last) : [];
  const closing = Object.fromEntries(pending.map((call) => [call.toolCallId, { error: end.closedWith }]));
  if (last) Object.assign(last.results, closing);
  const parts = steps.flatMap((step) => stepParts(step));
  const [row] = await sql.rows<{ ended: number }>(END_WAITING_RUN, [
    runId,
    end.status,
    attempt,
    JSON.stringify(closing),
    last?.step ?? -1,
    JSON.stringify(parts),
    end.error?.code ?? null,
    end.error?.message ?? null,
    end.reason,
  ]);
  return { ended: row?.ended === 1, pending };
}
