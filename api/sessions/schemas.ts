import { z } from 'zod';

// A session's workspace.

/** GET /api/sessions/{sessionId}/workspace (SPEC section 18). */
export const workspaceViewSchema = z.object({
  sessionId: z.uuid(),
  status: z.enum(['pending', 'ready']).describe('pending: asked for, made by the worker that runs the chat’s next run'),
  sizeBytes: z.number().int(),
  version: z.number().int().describe('moves with every tool call (or upload) that changed its files'),
  lastUsedAt: z.string().nullable(),
});

/** GET /api/sessions/{sessionId}/workspace/files */
export const workspaceFilesSchema = z.object({
  version: z.number().int(),
  entries: z.array(z.object({ path: z.string(), type: z.enum(['file', 'directory', 'symlink']), size: z.number().int() })),
  truncated: z.boolean(),
});
