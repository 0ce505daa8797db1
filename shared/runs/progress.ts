import { statement } from '../infra/sql.js';

/**
 * A running attempt's own marks on its run that change no status: its heartbeat and its step count.
 * Fenced like every worker write (the attempt, and status running).
 */

export const HEARTBEAT_RUNS = statement(
  'heartbeat_runs',
  `UPDATE runs SET heartbeat_at = now()
   FROM unnest($1::uuid[], $2::int[]) AS mine(run_id, attempt)
   WHERE runs.id = mine.run_id AND runs.attempt = mine.attempt AND runs.status = 'running'
   RETURNING runs.id::text AS id, runs.cancel_requested_at IS NOT NULL AS cancel_requested`,
);

// The step's row, only while the attempt still owns the run; the run's step count follows.
export const RECORD_STEP = statement(
  'record_step',
  `WITH r AS (
     UPDATE runs SET steps = $3::int + 1 WHERE id = $1::uuid AND attempt = $2::int AND status = 'running'
     RETURNING id, episode, attempt
   )
   INSERT INTO run_steps (run_id, episode, step, attempt, text, tool_calls, results, usage, provider_response_id)
   SELECT r.id, r.episode, $3::int, r.attempt, $4, $5::jsonb, $6::jsonb, $7::jsonb, $8 FROM r
   ON CONFLICT (run_id, episode, step) DO NOTHING
   RETURNING step`,
);
