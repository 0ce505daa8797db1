-- AlterTable
ALTER TABLE "runs" ADD COLUMN     "webhook" JSONB;

-- CreateTable
CREATE TABLE "webhook_events" (
    "id" UUID NOT NULL,
    "seq" BIGSERIAL NOT NULL,
    "run_id" UUID NOT NULL,
    "type" TEXT NOT NULL,
    "payload" JSONB NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'pending',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "next_attempt_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "locked_until" TIMESTAMPTZ(3),
    "retry_from" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "delivered_at" TIMESTAMPTZ(3),
    "last_error" TEXT,

    CONSTRAINT "webhook_events_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "webhook_deliveries" (
    "id" UUID NOT NULL,
    "event_id" UUID NOT NULL,
    "attempted_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "status_code" INTEGER,
    "latency_ms" INTEGER NOT NULL,
    "error" TEXT,

    CONSTRAINT "webhook_deliveries_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "webhook_events_seq_key" ON "webhook_events"("seq");

-- CreateIndex
CREATE INDEX "webhook_events_run_id_seq_idx" ON "webhook_events"("run_id", "seq");

-- CreateIndex
CREATE INDEX "webhook_events_status_created_at_idx" ON "webhook_events"("status", "created_at");

-- CreateIndex
CREATE INDEX "webhook_deliveries_event_id_attempted_at_idx" ON "webhook_deliveries"("event_id", "attempted_at");

-- AddForeignKey
ALTER TABLE "webhook_events" ADD CONSTRAINT "webhook_events_run_id_fkey" FOREIGN KEY ("run_id") REFERENCES "runs"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "webhook_deliveries" ADD CONSTRAINT "webhook_deliveries_event_id_fkey" FOREIGN KEY ("event_id") REFERENCES "webhook_events"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Provisioning stores a run's webhook too (same function, one more column).
CREATE OR REPLACE FUNCTION runyard_provision_runs(p_account_id uuid, p_max_active integer, p_runs jsonb) RETURNS SETOF uuid
LANGUAGE plpgsql
AS $$
DECLARE
  room integer;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended(p_account_id::text, 0));
  SELECT p_max_active - COALESCE(sum(c.active), 0) INTO room FROM account_active_runs c WHERE c.account_id = p_account_id;
  IF room <= 0 THEN
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

-- The webhook outbox's one writer: every change of a run's status (whichever statement makes it:
-- a worker's completion, a cancel, the sweep, a replay) writes the event in the same transaction,
-- for runs with a webhook that asked for that event. running is run.started; queued (a retry, a
-- continuation) is no event.
CREATE FUNCTION runyard_webhook_event() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
  event_type text := CASE NEW.status WHEN 'running' THEN 'run.started' ELSE 'run.' || NEW.status::text END;
  pending jsonb;
BEGIN
  IF NEW.status = 'queued' OR NOT (COALESCE(NEW.webhook->'events', '[]'::jsonb) ? event_type) THEN
    RETURN NULL;
  END IF;
  IF NEW.status = 'requires_action' THEN
    -- The calls the run waits on, as GET /api/chat/runs/{runId} shows them (shared/steps.ts pendingCalls).
    SELECT COALESCE(jsonb_agg(jsonb_build_object('toolCallId', c.value->>'toolCallId', 'toolName', c.value->>'toolName', 'input', c.value->'input',
             'kind', CASE WHEN c.value->>'kind' = 'client' THEN 'result' ELSE 'approval' END) ORDER BY c.ord), '[]'::jsonb)
      INTO pending
      FROM run_steps s, jsonb_array_elements(s.tool_calls) WITH ORDINALITY AS c(value, ord)
     WHERE s.run_id = NEW.id AND s.episode = NEW.episode
       AND s.step = (SELECT max(step) FROM run_steps WHERE run_id = NEW.id AND episode = NEW.episode)
       AND c.value->>'inputError' IS NULL AND NOT (s.results ? (c.value->>'toolCallId'))
       AND (c.value->>'kind' = 'client' OR (COALESCE((c.value->>'needsApproval')::boolean, false) AND NOT (s.approvals ? (c.value->>'toolCallId'))));
  END IF;
  INSERT INTO webhook_events (id, run_id, type, payload)
  VALUES (gen_random_uuid(), NEW.id, event_type, jsonb_build_object(
    'type', event_type,
    'runId', NEW.id,
    'chatId', NEW.chat_id,
    'sessionId', NEW.session_id,
    'status', NEW.status,
    'attempt', NEW.attempt,
    'usage', NEW.usage,
    'costMicros', NEW.cost_micros,
    'error', CASE WHEN NEW.error_code IS NULL THEN NULL
             ELSE jsonb_build_object('code', NEW.error_code, 'message', COALESCE(NEW.error_message, ''), 'retryable', COALESCE(NEW.error_retryable, false)) END,
    'occurredAt', to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
  ) || CASE WHEN pending IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('pendingToolCalls', pending) END);
  RETURN NULL;
END
$$;

CREATE TRIGGER runs_webhook_event AFTER UPDATE OF status ON runs
FOR EACH ROW WHEN (NEW.webhook IS NOT NULL AND OLD.status IS DISTINCT FROM NEW.status)
EXECUTE FUNCTION runyard_webhook_event();

-- The dispatcher's work list: the pending events, oldest first per run.
CREATE INDEX "webhook_events_pending_idx" ON "webhook_events"("run_id", "seq") WHERE status = 'pending';
