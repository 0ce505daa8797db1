-- CreateTable
CREATE TABLE "account_active_runs" (
    "account_id" UUID NOT NULL,
    "slot" SMALLINT NOT NULL,
    "active" INTEGER NOT NULL DEFAULT 0,

    CONSTRAINT "account_active_runs_pkey" PRIMARY KEY ("account_id","slot")
);

-- AddForeignKey
ALTER TABLE "account_active_runs" ADD CONSTRAINT "account_active_runs_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "accounts"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Keeps account_active_runs in step with runs, whatever changes a run's status (api, worker,
-- sweep, replay, deletes). Each transaction adds to the slot of its own connection, so concurrent
-- transactions of one account rarely wait on each other; only the sum of the slots means anything.
CREATE FUNCTION runyard_count_active_runs() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
  was_active boolean := TG_OP <> 'INSERT' AND OLD.status IN ('queued', 'running');
  is_active boolean := TG_OP <> 'DELETE' AND NEW.status IN ('queued', 'running');
BEGIN
  IF was_active AND is_active AND OLD.account_id = NEW.account_id THEN
    RETURN NULL;
  END IF;
  -- A run deleted with its account needs no count (the account's slots are deleted with it).
  IF was_active AND (TG_OP = 'UPDATE' OR EXISTS (SELECT 1 FROM accounts WHERE id = OLD.account_id)) THEN
    INSERT INTO account_active_runs (account_id, slot, active) VALUES (OLD.account_id, pg_backend_pid() % 16, -1)
    ON CONFLICT (account_id, slot) DO UPDATE SET active = account_active_runs.active - 1;
  END IF;
  IF is_active THEN
    INSERT INTO account_active_runs (account_id, slot, active) VALUES (NEW.account_id, pg_backend_pid() % 16, 1)
    ON CONFLICT (account_id, slot) DO UPDATE SET active = account_active_runs.active + 1;
  END IF;
  RETURN NULL;
END
$$;

-- No run changes while the count is taken and the triggers are put in place.
LOCK TABLE runs IN SHARE ROW EXCLUSIVE MODE;

INSERT INTO account_active_runs (account_id, slot, active)
SELECT account_id, 0, count(*) FROM runs WHERE status IN ('queued', 'running') GROUP BY account_id;

CREATE TRIGGER runs_count_active_insert AFTER INSERT ON runs
FOR EACH ROW WHEN (NEW.status IN ('queued', 'running')) EXECUTE FUNCTION runyard_count_active_runs();

-- Only when a run becomes active or stops being active (queued -> running is neither).
CREATE TRIGGER runs_count_active_update AFTER UPDATE OF status, account_id ON runs
FOR EACH ROW WHEN ((OLD.status IN ('queued', 'running')) IS DISTINCT FROM (NEW.status IN ('queued', 'running')) OR OLD.account_id IS DISTINCT FROM NEW.account_id)
EXECUTE FUNCTION runyard_count_active_runs();

CREATE TRIGGER runs_count_active_delete AFTER DELETE ON runs
FOR EACH ROW WHEN (OLD.status IN ('queued', 'running')) EXECUTE FUNCTION runyard_count_active_runs();

-- The active-run limit now reads the account's slots (at most 16 rows) instead of counting its
-- queued and running runs, which grew with the backlog. Serialised per account as before, so the
-- limit stays exact: a decrement not yet committed only makes the count too high, never too low.
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
  SELECT COALESCE(sum(c.active), 0) INTO active FROM account_active_runs c WHERE c.account_id = p_account_id;
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
