-- CreateTable
CREATE TABLE "account_provider_keys" (
    "account_id" UUID NOT NULL,
    "provider" TEXT NOT NULL,
    "sealed" JSONB NOT NULL,
    "base_url" TEXT,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "account_provider_keys_pkey" PRIMARY KEY ("account_id","provider")
);

-- AddForeignKey
ALTER TABLE "account_provider_keys" ADD CONSTRAINT "account_provider_keys_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "accounts"("id") ON DELETE CASCADE ON UPDATE CASCADE;
