-- AlterTable
ALTER TABLE "chats" ADD COLUMN     "labels" JSONB NOT NULL DEFAULT '{}';

-- AlterTable
ALTER TABLE "messages" ADD COLUMN     "discarded_at" TIMESTAMPTZ(3);

-- AlterTable
ALTER TABLE "runs" ADD COLUMN     "discarded" BOOLEAN NOT NULL DEFAULT false;
