-- AlterTable
ALTER TABLE "accounts" ADD COLUMN     "tool_secret" JSONB,
ADD COLUMN     "tool_secret_previous" JSONB,
ADD COLUMN     "tool_secret_previous_until" TIMESTAMPTZ(3);

-- AlterTable
ALTER TABLE "runs" ADD COLUMN     "finish_reason" TEXT,
ADD COLUMN     "max_steps" INTEGER NOT NULL DEFAULT 20,
ADD COLUMN     "steps" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "tools" JSONB;

-- CreateTable
CREATE TABLE "run_steps" (
    "run_id" UUID NOT NULL,
    "episode" INTEGER NOT NULL,
    "step" INTEGER NOT NULL,
    "attempt" INTEGER NOT NULL,
    "text" TEXT NOT NULL DEFAULT '',
    "tool_calls" JSONB NOT NULL DEFAULT '[]',
    "results" JSONB NOT NULL DEFAULT '{}',
    "usage" JSONB,
    "provider_response_id" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "run_steps_pkey" PRIMARY KEY ("run_id","episode","step")
);

-- AddForeignKey
ALTER TABLE "run_steps" ADD CONSTRAINT "run_steps_run_id_fkey" FOREIGN KEY ("run_id") REFERENCES "runs"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Provisioning stores a run's tools and step budget (SPEC section 9). Same function as before
-- (prisma/migrations/*_provision_runs_batched), two more columns.
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
      tools jsonb, max_steps integer)
    ORDER BY ord
    LIMIT room
  ), new_sessions AS (
    INSERT INTO sessions (id, account_id) SELECT i.session_id, p_account_id FROM input i
    RETURNING 1
  ), new_chats AS (
    INSERT INTO chats (id, account_id, session_id, title, metadata) SELECT i.chat_id, p_account_id, i.session_id, i.title, i.metadata FROM input i
    RETURNING 1
  ), new_runs AS (
    INSERT INTO runs (id, account_id, session_id, chat_id, model, system, max_output_tokens, idempotency_key, tools, max_steps)
    SELECT i.run_id, p_account_id, i.session_id, i.chat_id, i.model, i.system, i.max_output_tokens, i.idempotency_key,
      NULLIF(i.tools, 'null'::jsonb), COALESCE(i.max_steps, 20)
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
