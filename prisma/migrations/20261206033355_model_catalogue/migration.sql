-- CreateTable
CREATE TABLE "model_catalogue" (
    "model_id" TEXT NOT NULL,
    "input_usd_per_mtok" DECIMAL(12,6),
    "output_usd_per_mtok" DECIMAL(12,6),
    "cached_input_usd_per_mtok" DECIMAL(12,6),
    "context_tokens" INTEGER,
    "images" BOOLEAN NOT NULL DEFAULT false,
    "pdf" BOOLEAN NOT NULL DEFAULT false,
    "disabled" BOOLEAN NOT NULL DEFAULT false,
    "is_default" BOOLEAN NOT NULL DEFAULT false,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "model_catalogue_pkey" PRIMARY KEY ("model_id")
);
