-- AlterEnum
ALTER TYPE "run_status" ADD VALUE 'requires_action';

-- AlterEnum
ALTER TYPE "attempt_status" ADD VALUE 'requires_action';

-- AlterTable
ALTER TABLE "run_steps" ADD COLUMN     "approvals" JSONB NOT NULL DEFAULT '{}';
