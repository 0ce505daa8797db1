-- AlterTable
ALTER TABLE "chats" ADD COLUMN     "title_manual" BOOLEAN NOT NULL DEFAULT false;

-- CreateTable
CREATE TABLE "chat_title_jobs" (
    "chat_id" UUID NOT NULL,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "replace" BOOLEAN NOT NULL DEFAULT false,
    "next_attempt_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "chat_title_jobs_pkey" PRIMARY KEY ("chat_id")
);

-- CreateIndex
CREATE INDEX "chat_title_jobs_next_attempt_at_idx" ON "chat_title_jobs"("next_attempt_at");

-- AddForeignKey
ALTER TABLE "chat_title_jobs" ADD CONSTRAINT "chat_title_jobs_chat_id_fkey" FOREIGN KEY ("chat_id") REFERENCES "chats"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- A chat's first completed run asks for its title (SPEC section 19): an outbox row in the run's own
-- transaction, so no title is lost to a worker that dies between the run's end and the title call.
CREATE OR REPLACE FUNCTION runyard_request_chat_title() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO chat_title_jobs (chat_id)
  SELECT c.id FROM chats c WHERE c.id = NEW.chat_id AND c.title IS NULL AND NOT c.title_manual
  ON CONFLICT (chat_id) DO NOTHING;
  RETURN NULL;
END
$$;

CREATE TRIGGER runs_request_chat_title AFTER UPDATE OF status ON runs FOR EACH ROW
  WHEN (new.status = 'completed' AND old.status IS DISTINCT FROM new.status AND NOT new.discarded)
  EXECUTE FUNCTION runyard_request_chat_title();

CREATE TRIGGER chat_title_jobs_notify AFTER INSERT ON chat_title_jobs FOR EACH STATEMENT EXECUTE FUNCTION runyard_notify_outbox();
