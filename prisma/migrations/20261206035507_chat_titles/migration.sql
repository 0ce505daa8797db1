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

-- A completed run of an untitled chat writes the row in its finishing statement (shared/runs/transitions/finish.ts).
CREATE TRIGGER chat_title_jobs_notify AFTER INSERT ON chat_title_jobs FOR EACH STATEMENT EXECUTE FUNCTION runyard_notify_outbox();
