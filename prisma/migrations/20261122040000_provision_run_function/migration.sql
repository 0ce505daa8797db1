-- Provisions a run (session, chat, messages, run, ephemeral key) in one round trip.
-- The advisory lock serialises provisioning per account so the active-run limit is exact; as a
-- plpgsql function, each statement after the lock sees what the previous holder committed.
CREATE OR REPLACE FUNCTION runyard_provision_run(
  p_account_id uuid,
  p_max_active integer,
  p_session_id uuid,
  p_chat_id uuid,
  p_run_id uuid,
  p_model text,
  p_system text,
  p_max_output_tokens integer,
  p_idempotency_key text,
  p_title text,
  p_metadata jsonb,
  p_messages jsonb,
  p_key_id uuid,
  p_key_hash text,
  p_key_prefix text,
  p_key_scopes text[],
  p_key_expires_at timestamptz
) RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
  active integer;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended(p_account_id::text, 0));
  SELECT count(*) INTO active
  FROM (SELECT 1 FROM runs WHERE account_id = p_account_id AND status IN ('queued', 'running') LIMIT p_max_active) AS a;
  IF active >= p_max_active THEN
    RETURN false;
  END IF;
  INSERT INTO sessions (id, account_id) VALUES (p_session_id, p_account_id);
  INSERT INTO chats (id, account_id, session_id, title, metadata) VALUES (p_chat_id, p_account_id, p_session_id, p_title, p_metadata);
  INSERT INTO runs (id, account_id, session_id, chat_id, model, system, max_output_tokens, idempotency_key)
  VALUES (p_run_id, p_account_id, p_session_id, p_chat_id, p_model, p_system, p_max_output_tokens, p_idempotency_key);
  INSERT INTO messages (id, chat_id, run_id, role, parts)
  SELECT gen_random_uuid()::text, p_chat_id, p_run_id, (x.value->>'role')::message_role, x.value->'parts'
  FROM jsonb_array_elements(p_messages) WITH ORDINALITY AS x(value, ord)
  ORDER BY x.ord;
  INSERT INTO api_keys (id, account_id, kind, hash, prefix, scopes, run_id, expires_at)
  VALUES (p_key_id, p_account_id, 'ephemeral', p_key_hash, p_key_prefix, p_key_scopes, p_run_id, p_key_expires_at);
  RETURN true;
END
$$;
