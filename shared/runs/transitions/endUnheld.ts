import { cleanupCtes, type CleanupReason } from '../compensations.js';
import { sqlList, TRANSITIONS } from '../lifecycle.js';
import { statement, type Sql } from '../../infra/sql.js';

/**
 * endUnheld: a run no worker holds ends — a queued run cancelled, a stalled run failed by the sweep,
 * a run that could not be queued, a cancel no worker acted on — with its cleanup, in one statement.
 */
// Ends a run that no worker is running (a queued run cancelled, a stalled run failed by the sweep,
// a run that could not be queued) together with its cleanup; running attempts become interrupted.
// $6: the statuses it may end from; $7: the attempt it must still be on (null: any).
const END_RUN = statement(
  'end_run',
  `WITH ended AS (
     UPDATE runs SET status = $2::text::run_status, finished_at = now(), heartbeat_at = now(),
       error_code = COALESCE($3, error_code), error_message = COALESCE($4, error_message), error_retryable = COALESCE($5::boolean, error_retryable),
       cancel_requested_at = CASE WHEN $2::text = 'cancelled' THEN COALESCE(cancel_requested_at, now()) ELSE cancel_requested_at END
     WHERE id = $1::uuid AND status IN (${sqlList(TRANSITIONS.endUnheld.from)}) AND status::text = ANY($6::text[]) AND ($7::int IS NULL OR attempt = $7::int)
       AND $2::text IN (${sqlList(TRANSITIONS.endUnheld.to)})
     RETURNING id, account_id, session_id, episode
   ), interrupted AS (
     UPDATE run_attempts a SET status = 'interrupted', finished_at = now(), error_code = COALESCE($3, a.error_code) FROM ended e
     WHERE a.run_id = e.id AND a.status = 'running'
   ), ${cleanupCtes('ended', '$8')}
   SELECT (SELECT count(*) FROM ended)::int AS ended`,
);

export type EndRun = {
  status: (typeof TRANSITIONS.endUnheld.to)[number];
  reason: CleanupReason;
  /** Only from these of the transition's statuses (and, with `attempt`, only while the run is still on that attempt). */
  from: readonly (typeof TRANSITIONS.endUnheld.from)[number][];
  attempt?: number;
  error?: { code: string; message: string; retryable: boolean };
};

/** Ends a run no worker is running, and cleans it up, in one statement. False if it was not in a status it may end from. */
export async function endRun(sql: Sql, runId: string, end: EndRun): Promise<boolean> {
  const [row] = await sql.rows<{ ended: number }>(END_RUN, [
    runId,
    end.status,
    end.error?.code ?? null,
    end.error?.message ?? null,
    end.error?.retryable ?? null,
    end.from,
    end.attempt ?? null,
    end.reason,
  ]);
  return row?.ended === 1;
}
