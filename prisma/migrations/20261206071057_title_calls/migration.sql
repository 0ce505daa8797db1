-- CreateTable
CREATE TABLE "title_calls" (
    "id" BIGSERIAL NOT NULL,
    "chat_id" UUID NOT NULL,
    "account_id" UUID NOT NULL,
    "model" TEXT NOT NULL,
    "usage" JSONB NOT NULL,
    "cost_micros" BIGINT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "title_calls_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "title_calls_chat_id_idx" ON "title_calls"("chat_id");

-- CreateIndex
CREATE INDEX "title_calls_account_id_created_at_idx" ON "title_calls"("account_id", "created_at");

-- AddForeignKey
ALTER TABLE "title_calls" ADD CONSTRAINT "title_calls_chat_id_fkey" FOREIGN KEY ("chat_id") REFERENCES "chats"("id") ON DELETE CASCADE ON UPDATE CASCADE;
