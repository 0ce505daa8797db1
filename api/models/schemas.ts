import { z } from 'zod';

// The model catalogue as GET /api/models lists it.

/** A model of the catalogue (SPEC section 21), as GET /api/models lists it. */
export const catalogueModelSchema = z.object({
  id: z.string(),
  contextTokens: z.number().int().nullable(),
  prices: z
    .object({ inputUsdPerMTok: z.number(), outputUsdPerMTok: z.number(), cachedInputUsdPerMTok: z.number().nullable() })
    .nullable()
    .describe('null: unpriced'),
  reads: z.object({ images: z.boolean(), pdf: z.boolean() }),
  enabled: z.boolean(),
  default: z.boolean(),
  source: z.enum(['built-in', 'operator']),
});

export const modelListSchema = z.object({ models: z.array(catalogueModelSchema) });
