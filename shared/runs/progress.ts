import { statement } from '../infra/sql.js';
import { chargeCte } from '../accounts/usageLimits.js';

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

// The step's row, only while the attempt still owns the run; the run's step count follows, and the
// step's model call is charged to the account (tokens $9, spend $10) — once: a step persisted
// before (ON CONFLICT) is not charged again.
export const RECORD_STEP = statement(
  'record_step',
  `WITH r AS (
     UPDATE runs SET steps = $3::int + 1 WHERE id = $1::uuid AND attempt = $2::int AND status = 'running'
     RETURNING id, episode, attempt, account_id
   ), s AS (
     INSERT INTO run_steps (run_id, episode, step, attempt, text, tool_calls, results, usage, provider_response_id, model_started_at)
     SELECT r.id, r.episode, $3::int, r.attempt, $4, $5::jsonb, $6::jsonb, $7::jsonb, $8, $11::timestamptz FROM r
     ON CONFLICT (run_id, episode, step) DO NOTHING
     RETURNING step
   ), ${chargeCte('charged', 'SELECT r.account_id, $9::bigint AS tokens, $10::bigint AS spend_micros FROM r, s')}
   SELECT step FROM s`,
);

// A compaction as a durable step of the run (SPEC section 13), only while the attempt still owns the
// run (the row lock waits for a concurrent claim and re-checks), once per episode; its model call is
// charged to the account (its cost $10, tokens $11) in the same statement.
export const RECORD_COMPACTION = statement(
  'record_compaction',
  `WITH r AS (
     SELECT id, account_id, chat_id, episode, attempt FROM runs WHERE id = $1::uuid AND attempt = $2::int AND status = 'running' FOR SHARE
   ), c AS (
     INSERT INTO chat_compactions (id, chat_id, run_id, episode, attempt, before_step, through_message_id, through_seq, summary, input_tokens_before, model, usage, cost_micros, started_at)
     SELECT gen_random_uuid(), r.chat_id, r.id, r.episode, r.attempt, $3::int, $4, $5::bigint, $6, $7::int, $8, $9::jsonb, $10::bigint, $12::timestamptz FROM r
     ON CONFLICT (run_id, episode) DO NOTHING
     RETURNING run_id
   ), ${chargeCte('charged', 'SELECT r.account_id, $11::bigint AS tokens, $10::bigint AS spend_micros FROM r, c')}
   SELECT run_id::text FROM c`,
);

// A tool call's result (and when it ran), added to its step while the attempt still owns the run.
export const RECORD_RESULT = statement(
  'record_tool_result',
  `UPDATE run_steps s SET results = s.results || jsonb_build_object($4::text, $5::jsonb), result_timings = s.result_timings || jsonb_build_object($4::text, $6::jsonb)
   FROM runs r
   WHERE r.id = $1::uuid AND r.attempt = $2::int AND r.status = 'running' AND s.run_id = r.id AND s.episode = r.episode AND s.step = $3::int
   RETURNING s.step`,
);
