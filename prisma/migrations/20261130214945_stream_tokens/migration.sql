-- AlterEnum
ALTER TYPE "api_key_kind" ADD VALUE 'stream';

-- AlterTable
ALTER TABLE "api_keys" ADD COLUMN     "minted_by_id" UUID;

-- AddForeignKey
ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_minted_by_id_fkey" FOREIGN KEY ("minted_by_id") REFERENCES "api_keys"("id") ON DELETE CASCADE ON UPDATE CASCADE;
