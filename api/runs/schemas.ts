import { z } from 'zod';
import { FINISH_REASONS } from '../../shared/runs/lifecycle.js';
import { checkNamesUnique, runRequestFields, runStatusSchema, stepStartPart, textPart, toolPart, uiMessageSchema, usageSchema } from '../http/schemas.js';

// The runs' request and answer schemas: start, read, list, cancel, tool results, messages, streams.

export const startRunBodySchema = z
  .strictObject({
    ...runRequestFields,
    messages: z.array(uiMessageSchema).min(1).max(500).optional(),
    title: z.string().min(1).max(200).optional(),
  })
  .superRefine((body, ctx) => {
    checkNamesUnique(body, ctx);
    if ((body.prompt === undefined) === (body.messages === undefined)) {
      ctx.addIssue({ code: 'custom', path: [], message: 'send exactly one of "prompt" or "messages"' });
    }
    if (body.messages && body.messages[body.messages.length - 1]?.role !== 'user') {
      ctx.addIssue({ code: 'custom', path: ['messages'], message: 'the last message must be from the user' });
    }
  })
  .meta({ id: 'StartRunRequest' });

export type StartRunBody = z.infer<typeof startRunBodySchema>;

export const startRunResponseSchema = z
  .object({ runId: z.uuid(), chatId: z.uuid(), sessionId: z.uuid(), status: z.literal('queued') })
  .meta({ id: 'StartRunResponse' });

export const runSchema = z
  .object({
    runId: z.uuid(),
    chatId: z.uuid(),
    sessionId: z.uuid(),
    status: runStatusSchema,
    model: z.string(),
    attempt: z.number().int(),
    createdAt: z.iso.datetime(),
    startedAt: z.iso.datetime().nullable(),
    finishedAt: z.iso.datetime().nullable(),
    usage: usageSchema.nullable(),
    costMicros: z.number().int().nullable(),
    error: z.object({ code: z.string(), message: z.string(), retryable: z.boolean() }).nullable(),
    steps: z.number().int().meta({ description: 'Model calls the current episode has made' }),
    finishReason: z
      .enum(FINISH_REASONS)
      .nullable()
      .meta({ description: 'Why the run stopped (null while it runs and for a failed run; error for a run its spend limit stopped)' }),
    traceId: z.string().nullable().meta({ description: 'The run’s OpenTelemetry trace id (null when tracing is off)' }),
    pendingToolCalls: z
      .array(z.object({ toolCallId: z.string(), toolName: z.string(), input: z.unknown(), kind: z.enum(['result', 'approval']) }))
      .optional()
      .meta({ description: 'While requires_action: the calls waiting for your results or approvals' }),
  })
  .meta({ id: 'Run' });

export const runListQuerySchema = z.strictObject({
  status: runStatusSchema.optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z
    .string()
    // A run's sequence number: digits that fit the 64-bit id (a longer one overflowed into a 500).
    .refine((cursor) => /^\d{1,19}$/.test(cursor) && BigInt(cursor) <= 9_223_372_036_854_775_807n, 'is not a cursor this API returned')
    .optional(),
});

export const runListSchema = z.object({ runs: z.array(runSchema), nextCursor: z.string().nullable() }).meta({ id: 'RunList' });

const toolCallIdSchema = z.string().min(1).max(200);

export const toolResultsBodySchema = z
  .strictObject({
    results: z
      .array(
        z
          .strictObject({ toolCallId: toolCallIdSchema, output: z.unknown().optional(), error: z.string().max(100_000).optional() })
          .refine((result) => 'output' in result !== (result.error !== undefined), 'each result has exactly one of "output" or "error"'),
      )
      .max(128)
      .default([]),
    approvals: z
      .array(z.strictObject({ toolCallId: toolCallIdSchema, approved: z.boolean(), reason: z.string().max(10_000).optional() }))
      .max(128)
      .default([]),
  })
  .meta({ id: 'ToolResultsRequest', description: 'Answers every pending call of a run in requires_action at once.' });

export type ToolResultsBody = z.infer<typeof toolResultsBodySchema>;

export const toolResultsResponseSchema = z.object({ runId: z.uuid(), status: z.literal('queued') }).meta({ id: 'ToolResultsResponse' });

export const pendingToolCallSchema = z
  .object({ toolCallId: z.string(), toolName: z.string(), input: z.unknown(), kind: z.enum(['result', 'approval']) })
  .meta({ id: 'PendingToolCall' });

export const cancelRunResponseSchema = z.object({ runId: z.uuid(), status: runStatusSchema }).meta({ id: 'CancelRunResponse' });

export const messageListQuerySchema = z.strictObject({
  before: z.string().min(1).max(200).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
});

export const messageSchema = z
  .object({
    id: z.string(),
    role: z.enum(['user', 'assistant', 'system']),
    parts: z.array(
      z.union([
        textPart,
        stepStartPart,
        z
          .object({ type: z.literal('file'), mediaType: z.string(), url: z.string(), filename: z.string().optional() })
          .meta({ id: 'StoredFilePart', description: 'An attachment; url reads its bytes (/api/files/{fileId}/content).' }),
        toolPart.extend({ state: z.enum(['input-available', 'output-available', 'output-error', 'output-denied']) }),
      ]),
    ),
    createdAt: z.iso.datetime(),
    metadata: z.object({
      runId: z.uuid().nullable(),
      model: z.string().nullable(),
      usage: usageSchema.nullable(),
      costMicros: z.number().int().nullable(),
      runtimeMs: z.number().int().nullable(),
      providerResponseId: z.string().nullable(),
      interrupted: z.boolean(),
    }),
  })
  .meta({ id: 'Message' });

export const messageListSchema = z.object({ messages: z.array(messageSchema), hasMore: z.boolean() }).meta({ id: 'MessageList' });

export const streamQuerySchema = z.strictObject({
  after: z.string().max(64).optional(),
  token: z.string().max(200).optional().meta({ description: 'A stream token (ry_st_…) for clients that cannot send headers (EventSource)' }),
});

export const streamTokenResponseSchema = z.object({ token: z.string(), expiresAt: z.iso.datetime() }).meta({ id: 'StreamToken' });
