-- AlterTable
ALTER TABLE "accounts" ADD COLUMN     "file_quota_mb" INTEGER;

-- CreateTable
CREATE TABLE "files" (
    "id" UUID NOT NULL,
    "account_id" UUID NOT NULL,
    "media_type" TEXT NOT NULL,
    "filename" TEXT,
    "size_bytes" BIGINT NOT NULL,
    "sha256" TEXT NOT NULL,
    "chunks" INTEGER NOT NULL,
    "width" INTEGER,
    "height" INTEGER,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "files_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "chat_files" (
    "chat_id" UUID NOT NULL,
    "file_id" UUID NOT NULL,

    CONSTRAINT "chat_files_pkey" PRIMARY KEY ("chat_id","file_id")
);

-- CreateIndex
CREATE INDEX "files_account_id_created_at_idx" ON "files"("account_id", "created_at");

-- CreateIndex
CREATE INDEX "chat_files_file_id_idx" ON "chat_files"("file_id");

-- AddForeignKey
ALTER TABLE "files" ADD CONSTRAINT "files_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "accounts"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "chat_files" ADD CONSTRAINT "chat_files_chat_id_fkey" FOREIGN KEY ("chat_id") REFERENCES "chats"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "chat_files" ADD CONSTRAINT "chat_files_file_id_fkey" FOREIGN KEY ("file_id") REFERENCES "files"("id") ON DELETE CASCADE ON UPDATE CASCADE;
