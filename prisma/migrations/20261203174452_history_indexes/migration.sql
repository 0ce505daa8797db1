-- CreateIndex
CREATE INDEX "api_keys_minted_by_id_idx" ON "api_keys"("minted_by_id");

-- CreateIndex
CREATE INDEX "chats_last_activity_at_idx" ON "chats"("last_activity_at");

-- CreateIndex
CREATE INDEX "chats_session_id_idx" ON "chats"("session_id");

-- CreateIndex
CREATE INDEX "runs_session_id_idx" ON "runs"("session_id");
