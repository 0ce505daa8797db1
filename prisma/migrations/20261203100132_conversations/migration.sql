-- AlterTable
ALTER TABLE "chats" ADD COLUMN     "archived_at" TIMESTAMPTZ(3),
ADD COLUMN     "last_activity_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
ADD COLUMN     "settings" JSONB;

-- AlterTable
ALTER TABLE "runs" ADD COLUMN     "metadata" JSONB,
ADD COLUMN     "priority" TEXT NOT NULL DEFAULT 'normal',
ADD COLUMN     "queued_message_id" UUID;

-- CreateTable
CREATE TABLE "queued_messages" (
    "id" UUID NOT NULL,
    "seq" BIGSERIAL NOT NULL,
    "chat_id" UUID NOT NULL,
    "account_id" UUID NOT NULL,
    "position" BIGINT NOT NULL,
    "parts" JSONB NOT NULL,
    "run" JSONB NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "queued_messages_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "pending_run_jobs" (
    "run_id" UUID NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "pending_run_jobs_pkey" PRIMARY KEY ("run_id")
);

-- CreateIndex
CREATE UNIQUE INDEX "queued_messages_seq_key" ON "queued_messages"("seq");

-- CreateIndex
CREATE INDEX "queued_messages_chat_id_position_idx" ON "queued_messages"("chat_id", "position");

-- CreateIndex
CREATE INDEX "chats_account_id_last_activity_at_idx" ON "chats"("account_id", "last_activity_at");

-- AddForeignKey
ALTER TABLE "queued_messages" ADD CONSTRAINT "queued_messages_chat_id_fkey" FOREIGN KEY ("chat_id") REFERENCES "chats"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "pending_run_jobs" ADD CONSTRAINT "pending_run_jobs_run_id_fkey" FOREIGN KEY ("run_id") REFERENCES "runs"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- A chat has at most one active run (SPEC section 12), whoever starts it: the api for a message to
-- an idle chat, or the promotion below. Both hold the chat's row lock; this index is the backstop.
CREATE UNIQUE INDEX "runs_one_active_per_chat" ON "runs"("chat_id") WHERE status IN ('queued', 'running', 'requires_action');

-- A queued message counts towards its account's active runs, like a run (the same slots).
CREATE OR REPLACE FUNCTION runyard_count_queued_messages() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO account_active_runs (account_id, slot, active) VALUES (NEW.account_id, pg_backend_pid() % 16, 1)
    ON CONFLICT (account_id, slot) DO UPDATE SET active = account_active_runs.active + 1;
  ELSIF EXISTS (SELECT 1 FROM accounts WHERE id = OLD.account_id) THEN
    INSERT INTO account_active_runs (account_id, slot, active) VALUES (OLD.account_id, pg_backend_pid() % 16, -1)
    ON CONFLICT (account_id, slot) DO UPDATE SET active = account_active_runs.active - 1;
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER queued_messages_count_active AFTER INSERT OR DELETE ON queued_messages FOR EACH ROW EXECUTE FUNCTION runyard_count_queued_messages();

-- The hand-over from "run ended" to "next run queued" (shared/runs/lifecycle.ts, PROMOTION): the
-- chat's first queued message becomes its next run — its session, run, user message — and waits in
-- pending_run_jobs for a worker to mint its run key and queue its job. Not for an archived chat, nor
-- while another run of the chat is active. Returns the new run's id (null: nothing started).
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
  IF next.id IS NULL THEN
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

-- In the transaction that ends a chat's active run, whatever ends it.
CREATE OR REPLACE FUNCTION runyard_promote_queued_message() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM runyard_start_next_queued_message(NEW.chat_id);
  RETURN NULL;
END
$$;

CREATE TRIGGER runs_promote_queued_message AFTER UPDATE OF status ON runs FOR EACH ROW
  WHEN (OLD.status IN ('queued', 'running', 'requires_action') AND NEW.status IN ('completed', 'failed', 'cancelled'))
  EXECUTE FUNCTION runyard_promote_queued_message();

-- A run a queued message became says which, in each of its webhook events (queuedMessageId).
CREATE OR REPLACE FUNCTION runyard_webhook_event() RETURNS trigger LANGUAGE plpgsql AS $$
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
  ) || CASE WHEN pending IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('pendingToolCalls', pending) END
    || CASE WHEN NEW.queued_message_id IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('queuedMessageId', NEW.queued_message_id) END);
  RETURN NULL;
END
$$;
