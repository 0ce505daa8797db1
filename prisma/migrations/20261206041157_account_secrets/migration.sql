-- CreateTable
CREATE TABLE "account_secrets" (
    "account_id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "sealed" JSONB NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "account_secrets_pkey" PRIMARY KEY ("account_id","name")
);

-- AddForeignKey
ALTER TABLE "account_secrets" ADD CONSTRAINT "account_secrets_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "accounts"("id") ON DELETE CASCADE ON UPDATE CASCADE;
