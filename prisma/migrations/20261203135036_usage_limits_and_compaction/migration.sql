-- AlterTable
ALTER TABLE "accounts" ADD COLUMN     "compaction_threshold_percent" INTEGER,
ADD COLUMN     "limit_period" TEXT,
ADD COLUMN     "limit_spend_micros" BIGINT,
ADD COLUMN     "limit_tokens" BIGINT;

-- CreateTable
CREATE TABLE "account_usage" (
    "account_id" UUID NOT NULL,
    "day" DATE NOT NULL,
    "slot" SMALLINT NOT NULL,
    "tokens" BIGINT NOT NULL DEFAULT 0,
    "spend_micros" BIGINT NOT NULL DEFAULT 0,

    CONSTRAINT "account_usage_pkey" PRIMARY KEY ("account_id","day","slot")
);

-- CreateTable
CREATE TABLE "chat_compactions" (
    "id" UUID NOT NULL,
    "chat_id" UUID NOT NULL,
    "run_id" UUID NOT NULL,
    "episode" INTEGER NOT NULL,
    "attempt" INTEGER NOT NULL,
    "before_step" INTEGER NOT NULL,
    "through_message_id" TEXT NOT NULL,
    "through_seq" BIGINT NOT NULL,
    "summary" TEXT NOT NULL,
    "input_tokens_before" INTEGER NOT NULL,
    "model" TEXT NOT NULL,
    "usage" JSONB NOT NULL,
    "cost_micros" BIGINT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "chat_compactions_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "chat_compactions_chat_id_through_seq_idx" ON "chat_compactions"("chat_id", "through_seq");

-- CreateIndex
CREATE UNIQUE INDEX "chat_compactions_run_id_episode_key" ON "chat_compactions"("run_id", "episode");

-- AddForeignKey
ALTER TABLE "account_usage" ADD CONSTRAINT "account_usage_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "accounts"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "chat_compactions" ADD CONSTRAINT "chat_compactions_chat_id_fkey" FOREIGN KEY ("chat_id") REFERENCES "chats"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "chat_compactions" ADD CONSTRAINT "chat_compactions_run_id_fkey" FOREIGN KEY ("run_id") REFERENCES "runs"("id") ON DELETE CASCADE ON UPDATE CASCADE;

ALTER TABLE "accounts" ADD CONSTRAINT "accounts_limit_period_check" CHECK (limit_period IN ('day', 'week', 'month'));
ALTER TABLE "accounts" ADD CONSTRAINT "accounts_compaction_threshold_percent_check" CHECK (compaction_threshold_percent BETWEEN 1 AND 100);
ALTER TABLE "accounts" ADD CONSTRAINT "accounts_limits_positive_check" CHECK (limit_spend_micros >= 0 AND limit_tokens >= 0);

-- The input tokens of the run's last model call: how full the model's window was (SPEC section 13).
ALTER TABLE "messages" ADD COLUMN "context_tokens" INTEGER;

-- An account's limit that is reached for the current UTC calendar period (SPEC section 14), or null:
-- { kind: tokens|spendMicros, limit, consumed, period, resetsAt }. Its consumption is the sum of its
-- days in the period (account_usage, charged by every model call).
CREATE OR REPLACE FUNCTION runyard_usage_limit_reached(p_account_id uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
  acct record;
  period_start date;
  used_tokens bigint;
  used_spend bigint;
BEGIN
  SELECT limit_period, limit_spend_micros, limit_tokens INTO acct FROM accounts WHERE id = p_account_id;
  IF acct.limit_period IS NULL OR (acct.limit_spend_micros IS NULL AND acct.limit_tokens IS NULL) THEN
    RETURN NULL;
  END IF;
  period_start := date_trunc(acct.limit_period, now() AT TIME ZONE 'UTC')::date;
  SELECT COALESCE(sum(u.tokens), 0), COALESCE(sum(u.spend_micros), 0) INTO used_tokens, used_spend
    FROM account_usage u WHERE u.account_id = p_account_id AND u.day >= period_start;
  IF acct.limit_tokens IS NOT NULL AND used_tokens >= acct.limit_tokens THEN
    RETURN jsonb_build_object('kind', 'tokens', 'limit', acct.limit_tokens, 'consumed', used_tokens, 'period', acct.limit_period,
      'resetsAt', to_char((period_start + ('1 ' || acct.limit_period)::interval) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'));
  END IF;
  IF acct.limit_spend_micros IS NOT NULL AND used_spend >= acct.limit_spend_micros THEN
    RETURN jsonb_build_object('kind', 'spendMicros', 'limit', acct.limit_spend_micros, 'consumed', used_spend, 'period', acct.limit_period,
      'resetsAt', to_char((period_start + ('1 ' || acct.limit_period)::interval) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'));
  END IF;
  RETURN NULL;
END
$$;

-- Provisioning refuses (returns no run) once the account has reached a spend limit, like a full account.
CREATE OR REPLACE FUNCTION runyard_provision_runs(p_account_id uuid, p_max_active integer, p_runs jsonb) RETURNS SETOF uuid
LANGUAGE plpgsql AS $$
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
      tools jsonb, max_steps integer, mcp_servers jsonb, webhook jsonb)
    ORDER BY ord
    LIMIT room
  ), new_sessions AS (
    INSERT INTO sessions (id, account_id) SELECT i.session_id, p_account_id FROM input i
    RETURNING 1
  ), new_chats AS (
    INSERT INTO chats (id, account_id, session_id, title, metadata) SELECT i.chat_id, p_account_id, i.session_id, i.title, i.metadata FROM input i
    RETURNING 1
  ), new_runs AS (
    INSERT INTO runs (id, account_id, session_id, chat_id, model, system, max_output_tokens, idempotency_key, tools, max_steps, mcp_servers, webhook)
    SELECT i.run_id, p_account_id, i.session_id, i.chat_id, i.model, i.system, i.max_output_tokens, i.idempotency_key,
      NULLIF(i.tools, 'null'::jsonb), COALESCE(i.max_steps, 20), NULLIF(i.mcp_servers, 'null'::jsonb), NULLIF(i.webhook, 'null'::jsonb)
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

-- A queued message waits (is not promoted) while its account is over a spend limit; the sweep
-- promotes it once the period has rolled over or the limit was raised.
CREATE OR REPLACE FUNCTION runyard_start_next_queued_message(p_chat_id uuid) RETURNS uuid
LANGUAGE plpgsql AS $$
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
  INSERT INTO runs (id, account_id, session_id, chat_id, model, system, max_output_tokens, tools, max_steps, mcp_servers, webhook, queued_message_id, metadata, priority)
  VALUES (new_run, chat.account_id, new_session, p_chat_id, next.run->>'model', next.run->>'system', (next.run->>'maxOutputTokens')::int,
    NULLIF(next.run->'tools', 'null'::jsonb), COALESCE((next.run->>'maxSteps')::int, 20), NULLIF(next.run->'mcpServers', 'null'::jsonb),
    NULLIF(next.run->'webhook', 'null'::jsonb), next.id, NULLIF(next.run->'metadata', 'null'::jsonb), COALESCE(next.run->>'priority', 'normal'));
  INSERT INTO messages (id, chat_id, run_id, role, parts) VALUES (gen_random_uuid()::text, p_chat_id, new_run, 'user', next.parts);
  INSERT INTO pending_run_jobs (run_id) VALUES (new_run);
  UPDATE chats SET last_activity_at = now() WHERE id = p_chat_id;
  RETURN new_run;
END
$$;
