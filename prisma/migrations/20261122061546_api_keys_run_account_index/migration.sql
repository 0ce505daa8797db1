-- DropIndex
DROP INDEX "api_keys_run_id_idx";

-- CreateIndex
CREATE INDEX "api_keys_run_id_account_id_idx" ON "api_keys"("run_id", "account_id");
