import { DEFAULT_MAX_STEPS } from '../../shared/runs/lifecycle.js';
import { databaseFunction } from './databaseFunction.js';

/** Provisions POSTed runs in one call per batch (session, chat, messages, run, its key), under the account's lock and within its active-run limit: the ids it provisioned (shared/runs/provisioning.ts). */
export default databaseFunction(
  'runyard_provision_runs',
  `CREATE OR REPLACE FUNCTION public.runyard_provision_runs(p_account_id uuid, p_max_active integer, p_runs jsonb)
 RETURNS SETOF uuid
 LANGUAGE plpgsql
AS $function$
DECLARE
  room integer;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended(p_account_id::text, 0));
  SELECT p_max_active - COALESCE(sum(c.active), 0) INTO room FROM account_active_runs c WHERE c.account_id = p_account_id;
  IF room <= 0 OR runyard_usage_limit_reached(p_account_id) IS NOT NULL THEN
    RETURN;
  END IF;
  RETURN QUERY
  WITH input AS (
    SELECT * FROM jsonb_to_recordset(p_runs) AS x(
      ord integer, session_id uuid, chat_id uuid, run_id uuid, model text, system text, max_output_tokens integer, idempotency_key text,
      title text, metadata jsonb, messages jsonb, key_id uuid, key_hash text, key_prefix text, key_scopes text[], key_expires_at timestamptz,
      tools jsonb, max_steps integer, mcp_servers jsonb, webhook jsonb, traceparent text, priority text, sent_by_key_id uuid)
    ORDER BY ord
    LIMIT room
  ), new_sessions AS (
    INSERT INTO sessions (id, account_id) SELECT i.session_id, p_account_id FROM input i
    RETURNING 1
  ), new_chats AS (
    INSERT INTO chats (id, account_id, session_id, title, metadata) SELECT i.chat_id, p_account_id, i.session_id, i.title, i.metadata FROM input i
    RETURNING 1
  ), new_runs AS (
    INSERT INTO runs (id, account_id, session_id, chat_id, model, system, max_output_tokens, idempotency_key, tools, max_steps, mcp_servers, webhook, traceparent, priority, sent_by_key_id)
    SELECT i.run_id, p_account_id, i.session_id, i.chat_id, i.model, i.system, i.max_output_tokens, i.idempotency_key,
      NULLIF(i.tools, 'null'::jsonb), COALESCE(i.max_steps, ${DEFAULT_MAX_STEPS}), NULLIF(i.mcp_servers, 'null'::jsonb), NULLIF(i.webhook, 'null'::jsonb), i.traceparent,
      COALESCE(i.priority, 'normal'), i.sent_by_key_id
    FROM input i ORDER BY i.ord
    RETURNING id
  ), new_messages AS (
    INSERT INTO messages (id, chat_id, run_id, role, parts)
    SELECT gen_random_uuid()::text, i.chat_id, i.run_id, (m.value->>'role')::message_role, m.value->'parts'
    FROM input i, jsonb_array_elements(i.messages) WITH ORDINALITY AS m(value, n)
    ORDER BY i.ord, m.n
    RETURNING 1
  ), new_keys AS (
    INSERT INTO api_keys (id, account_id, kind, hash, prefix, scopes, run_id, expires_at)
    SELECT i.key_id, p_account_id, 'ephemeral', i.key_hash, i.key_prefix, i.key_scopes, i.run_id, i.key_expires_at FROM input i
    RETURNING 1
  )
  SELECT r.id FROM new_runs r;
END
$function$;`,
);
