import { z } from 'zod';

// An uploaded file.

export const fileSchema = z
  .object({
    fileId: z.uuid(),
    mediaType: z.string(),
    filename: z.string().nullable(),
    sizeBytes: z.number().int(),
    sha256: z.string(),
    width: z.number().int().nullable(),
    height: z.number().int().nullable(),
    createdAt: z.iso.datetime(),
  })
  .meta({ id: 'File' });
