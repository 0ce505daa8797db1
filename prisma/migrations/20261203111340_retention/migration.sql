-- AlterTable
ALTER TABLE "accounts" ADD COLUMN     "retention_days" INTEGER;

-- CreateIndex
CREATE INDEX "runs_chat_id_idx" ON "runs"("chat_id");
