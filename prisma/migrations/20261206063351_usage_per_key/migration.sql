-- AlterTable
ALTER TABLE "runs" ADD COLUMN     "sent_by_key_id" UUID;

-- The provisioning of POST /api/chat/runs records the key that sent each run (`sent_by_key_id` in p_runs).
CREATE OR REPLACE FUNCTION runyard_provision_runs(p_account_id uuid, p_max_active integer, p_runs jsonb) RETURNS SETOF uuid LANGUAGE plpgsql AS $$
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
      NULLIF(i.tools, 'null'::jsonb), COALESCE(i.max_steps, 20), NULLIF(i.mcp_servers, 'null'::jsonb), NULLIF(i.webhook, 'null'::jsonb), i.traceparent,
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
$$;

-- A queued message's run is attributed to the key that sent the message (its `run.sentByKeyId`).
CREATE OR REPLACE FUNCTION runyard_start_next_queued_message(p_chat_id uuid) RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
  chat record;
  next record;
  new_session uuid := gen_random_uuid();
  new_run uuid := gen_random_uuid();
BEGIN
  SELECT id, account_id, archived_at INTO chat FROM chats WHERE id = p_chat_id FOR UPDATE;
  IF chat.id IS NULL OR chat.archived_at IS NOT NULL THEN
    RETURN NULL;
  END IF;
  IF EXISTS (SELECT 1 FROM runs WHERE chat_id = p_chat_id AND status IN ('queued', 'running', 'requires_action')) THEN
    RETURN NULL;
  END IF;
  SELECT q.id, q.parts, q.run INTO next FROM queued_messages q WHERE q.chat_id = p_chat_id ORDER BY q.position, q.seq LIMIT 1;
  IF next.id IS NULL OR runyard_usage_limit_reached(chat.account_id) IS NOT NULL THEN
    RETURN NULL;
  END IF;
  DELETE FROM queued_messages WHERE id = next.id;
  INSERT INTO sessions (id, account_id) VALUES (new_session, chat.account_id);
  INSERT INTO runs (id, account_id, session_id, chat_id, model, system, max_output_tokens, tools, max_steps, mcp_servers, webhook, queued_message_id, metadata, priority, traceparent, sent_by_key_id)
  VALUES (new_run, chat.account_id, new_session, p_chat_id, next.run->>'model', next.run->>'system', (next.run->>'maxOutputTokens')::int,
    NULLIF(next.run->'tools', 'null'::jsonb), COALESCE((next.run->>'maxSteps')::int, 20), NULLIF(next.run->'mcpServers', 'null'::jsonb),
    NULLIF(next.run->'webhook', 'null'::jsonb), next.id, NULLIF(next.run->'metadata', 'null'::jsonb), COALESCE(next.run->>'priority', 'normal'),
    next.run->>'traceparent', (next.run->>'sentByKeyId')::uuid);
  INSERT INTO messages (id, chat_id, run_id, role, parts) VALUES (gen_random_uuid()::text, p_chat_id, new_run, 'user', next.parts);
  INSERT INTO pending_run_jobs (run_id) VALUES (new_run);
  UPDATE chats SET last_activity_at = now() WHERE id = p_chat_id;
  RETURN new_run;
END
$$;
