import { statement } from '../../infra/sql.js';
import { sqlList, TRANSITIONS } from '../lifecycle.js';

/**
 * claim: a worker takes the run's next attempt (the statement RunStore batches across runs).
 * For each run: bumps the fencing token, marks the run running, records the attempt (closing one a
 * dead worker left running) and reads the conversation: every message of the chat but this run's own
 * answers (attempt set; an earlier run's interrupted answer is included: the transcript stays in
 * order; assistant messages the caller sent with the run have no attempt) after the chat's latest
 * compaction, which comes with them (SPEC section 13), and the account's compaction threshold and
 * whether it has spend limits; the run's traceparent (and, for a queued message's run, the previous
 * run's, which its trace links) and the attempt a dead worker left running, if any (its trace shows it); and the
 * chat's workspace (SPEC section 18) when the chat works in one; the account's own key for the
 * run's provider (sealed, SPEC section 21), if it has one. Runs that are not runnable have no row.
 */
export const BEGIN_ATTEMPTS = statement(
  'begin_attempts',
  `WITH r AS (
     UPDATE runs SET attempt = attempt + 1, status = '${TRANSITIONS.claim.to[0]}', worker_id = $2, heartbeat_at = now(),
       started_at = COALESCE(started_at, now()), error_code = NULL, error_message = NULL, error_retryable = NULL
     FROM unnest($1::uuid[]) AS i(run_id)
     WHERE runs.id = i.run_id AND runs.status IN (${sqlList(TRANSITIONS.claim.from)}) AND runs.cancel_requested_at IS NULL
     RETURNING runs.id, runs.account_id, runs.chat_id, runs.model, runs.system, runs.max_output_tokens, runs.attempt, runs.episode, runs.tools, runs.mcp_servers, runs.max_steps,
       runs.traceparent, runs.queued_message_id, runs.created_at
   ), previous AS (
     UPDATE run_attempts a SET status = 'interrupted', finished_at = now(), error_code = 'worker_lost', error_message = 'the worker stopped before the attempt finished'
     FROM r
     WHERE a.run_id = r.id AND a.status = 'running'
     RETURNING a.run_id, a.attempt, a.started_at, a.worker_id
   ), a AS (
     INSERT INTO run_attempts (id, run_id, attempt, worker_id) SELECT gen_random_uuid(), r.id, r.attempt, $2 FROM r
     RETURNING run_id, started_at
   )
   SELECT r.id::text, r.account_id::text, r.chat_id::text, r.model, r.system, r.max_output_tokens, r.attempt, r.episode, r.tools, r.mcp_servers, r.max_steps, a.started_at,
     r.traceparent,
     CASE WHEN r.queued_message_id IS NULL THEN NULL ELSE
       (SELECT b.traceparent FROM runs b WHERE b.chat_id = r.chat_id AND b.id <> r.id AND b.created_at <= r.created_at ORDER BY b.created_at DESC LIMIT 1) END
       AS previous_run_traceparent,
     CASE WHEN p.run_id IS NULL THEN NULL ELSE json_build_object('attempt', p.attempt, 'startedAt', p.started_at, 'workerId', p.worker_id) END AS lost_attempt,
     (SELECT json_build_object('sealed', pk.sealed, 'baseUrl', pk.base_url) FROM account_provider_keys pk
       WHERE pk.account_id = r.account_id AND pk.provider = split_part(r.model, '/', 1)) AS provider_key,
     CASE WHEN w.session_id IS NULL THEN NULL ELSE
       json_build_object('sessionId', w.session_id, 'status', w.status, 'version', w.version, 'blobKey', w.blob_key, 'spec', w.spec) END AS workspace,
     CASE WHEN r.tools IS NULL AND r.mcp_servers IS NULL AND w.session_id IS NULL THEN '[]'::json ELSE
       (SELECT COALESCE(json_agg(json_build_object('step', s.step, 'text', s.text, 'toolCalls', s.tool_calls, 'results', s.results, 'usage', s.usage,
          'providerResponseId', s.provider_response_id, 'approvals', s.approvals) ORDER BY s.step), '[]'::json)
        FROM run_steps s WHERE s.run_id = r.id AND s.episode = r.episode) END AS steps,
     CASE WHEN r.tools IS NULL AND r.mcp_servers IS NULL THEN NULL ELSE
       json_build_object('toolSecret', ac.tool_secret, 'toolSecretPrevious', ac.tool_secret_previous, 'toolSecretPreviousUntil', ac.tool_secret_previous_until) END AS tool_secrets,
     ac.compaction_threshold_percent, (ac.limit_period IS NOT NULL OR EXISTS (SELECT 1 FROM deployment_limits)) AS has_limits,
     CASE WHEN lc.id IS NULL THEN NULL ELSE json_build_object('runId', lc.run_id, 'episode', lc.episode, 'beforeStep', lc.before_step, 'summary', lc.summary,
       'throughMessageId', lc.through_message_id, 'throughSeq', lc.through_seq, 'inputTokensBefore', lc.input_tokens_before, 'usage', lc.usage) END AS compaction,
     (SELECT COALESCE(json_agg(json_build_object('seq', m.seq, 'id', m.id, 'runId', m.run_id, 'role', m.role, 'parts', m.parts, 'contextTokens', m.context_tokens)
          ORDER BY m.seq), '[]'::json)
        FROM messages m
       WHERE m.chat_id = r.chat_id AND m.seq > COALESCE(lc.through_seq, 0)
         AND NOT (m.run_id = r.id AND m.role = 'assistant' AND m.attempt IS NOT NULL)
         -- An edit's or a regenerate's discarded turns are never sent to a model again (SPEC section 19).
         AND m.discarded_at IS NULL AND NOT EXISTS (SELECT 1 FROM runs d WHERE d.id = m.run_id AND d.discarded AND d.id <> r.id)) AS conversation
   FROM r JOIN a ON a.run_id = r.id JOIN accounts ac ON ac.id = r.account_id LEFT JOIN previous p ON p.run_id = r.id
   LEFT JOIN chats ch ON ch.id = r.chat_id AND ch.workspace
   LEFT JOIN workspaces w ON w.session_id = ch.session_id
   LEFT JOIN LATERAL (
     SELECT cc.* FROM chat_compactions cc WHERE cc.chat_id = r.chat_id ORDER BY cc.through_seq DESC, cc.created_at DESC LIMIT 1
   ) lc ON true`,
);
