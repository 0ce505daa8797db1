import { statement } from '../../infra/sql.js';
import { cleanupCtes } from '../compensations.js';
import { sqlList, TRANSITIONS } from '../lifecycle.js';
import { chargeCte } from '../../accounts/usageLimits.js';

/**
 * finish: the attempt answered (or was cancelled while running); the run ends with its message and cleanup.
 * For each run still owned by the attempt: its terminal state, its assistant message, the attempt's
 * end and the run's cleanup. `status` is the run's new status, the attempt's, and the cleanup's reason
 * (failed: a run stopped by its account's spend limit, which keeps its output and its error). The
 * model calls not charged yet (the last answer's) are charged to the account in the same statement,
 * and a completed run of an untitled chat asks for its title (CHAT_TITLES, `request_title`).
 */
export const FINISH_ATTEMPTS_WITH_MESSAGES = statement(
  'finish_attempts_with_messages',
  `WITH input AS (
     SELECT * FROM unnest($1::uuid[], $2::int[], $3::text[], $4::jsonb[], $5::bigint[], $6::jsonb[], $7::text[], $8::int[], $9::text[], $10::boolean[], $11::int[], $12::text[],
       $13::bigint[], $14::bigint[], $15::int[], $16::text[], $17::text[], $18::boolean[])
       AS i(run_id, attempt, status, usage, cost_micros, parts, model, runtime_ms, provider_response_id, interrupted, steps, finish_reason,
         charge_tokens, charge_spend_micros, context_tokens, error_code, error_message, request_title)
   ), ended AS (
     UPDATE runs SET status = i.status::run_status, finished_at = now(), heartbeat_at = now(), usage = i.usage, cost_micros = i.cost_micros,
       steps = i.steps, finish_reason = i.finish_reason, error_code = i.error_code, error_message = i.error_message,
       error_retryable = CASE WHEN i.error_code IS NULL THEN NULL ELSE false END
     FROM input i
     WHERE runs.id = i.run_id AND runs.attempt = i.attempt AND runs.status IN (${sqlList(TRANSITIONS.finish.from)}) AND i.status IN (${sqlList(TRANSITIONS.finish.to)})
     RETURNING runs.id, runs.chat_id, runs.account_id, runs.session_id, runs.episode, runs.discarded, i.*
   ), message AS (
     INSERT INTO messages (id, chat_id, run_id, role, parts, model, attempt, input_tokens, output_tokens, cached_input_tokens, reasoning_tokens, cost_micros, runtime_ms, provider_response_id, interrupted, context_tokens)
     SELECT gen_random_uuid()::text, e.chat_id, e.id, 'assistant', e.parts, e.model, e.attempt, (e.usage->>'inputTokens')::int, (e.usage->>'outputTokens')::int,
       (e.usage->>'cachedInputTokens')::int, (e.usage->>'reasoningTokens')::int, e.cost_micros, e.runtime_ms, e.provider_response_id, e.interrupted, e.context_tokens
     FROM ended e
     RETURNING run_id
   ), attempt AS (
     UPDATE run_attempts a SET status = e.status::attempt_status, finished_at = now(), error_code = e.error_code, error_message = e.error_message FROM ended e
     WHERE a.run_id = e.id AND a.attempt = e.attempt
   ), titles AS (
     -- A completed run of a chat with no title asks for one (SPEC section 19): an outbox row in this transaction.
     INSERT INTO chat_title_jobs (chat_id)
     SELECT DISTINCT e.chat_id FROM ended e JOIN chats c ON c.id = e.chat_id
     WHERE e.request_title AND e.status = 'completed' AND NOT e.discarded AND c.title IS NULL AND NOT c.title_manual
     ON CONFLICT (chat_id) DO NOTHING
   ), ${chargeCte('charged', 'SELECT e.account_id, e.charge_tokens AS tokens, e.charge_spend_micros AS spend_micros FROM ended e')},
   ${cleanupCtes('ended', 't.status')}
   SELECT m.run_id::text FROM message m`,
);
