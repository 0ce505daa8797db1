import { ON_BUSY } from '../../shared/chats/busyPolicy.js';
import { PRIORITIES } from '../../shared/flow/priorities.js';
import { z } from 'zod';
import { checkNamesUnique, runRequestFields, runStatusSchema, uiMessageSchema } from '../http/schemas.js';

// The chats' request and answer schemas: messages, queued messages, settings, edits, titles and
// labels.

/** POST /api/chats/{chatId}/messages (SPEC section 12). */
export const sendMessageBodySchema = z
  .strictObject({
    ...runRequestFields,
    message: uiMessageSchema.optional().meta({ description: 'One UI message from the user (text parts)' }),
    onBusy: z.enum(ON_BUSY).optional().meta({ description: 'When the chat has an active run: queue (default), interrupt, or reject (409 chat_busy)' }),
  })
  .superRefine((body, ctx) => {
    checkNamesUnique(body, ctx);
    if ((body.prompt === undefined) === (body.message === undefined)) {
      ctx.addIssue({ code: 'custom', path: [], message: 'send exactly one of "prompt" or "message"' });
    }
    if (body.message && body.message.role !== 'user') ctx.addIssue({ code: 'custom', path: ['message', 'role'], message: 'the message must be from the user' });
  })
  .meta({ id: 'SendMessageRequest' });

export type SendMessageBody = z.infer<typeof sendMessageBodySchema>;

export const sendMessageResponseSchema = z
  .union([
    z.object({ runId: z.uuid(), chatId: z.uuid(), sessionId: z.uuid(), status: z.literal('queued'), messageId: z.string() }),
    z.object({ chatId: z.uuid(), queued: z.literal(true), queuedMessageId: z.uuid(), position: z.number().int().min(1) }),
  ])
  .meta({ id: 'SendMessageResponse' });

export const chatSettingsSchema = z
  .object({
    model: z.string(),
    system: z.string().nullable(),
    maxOutputTokens: z.number().int().nullable(),
    maxSteps: z.number().int(),
    tools: z.array(z.unknown()).nullable(),
    mcpServers: z.array(z.unknown()).nullable(),
    webhook: z.unknown().nullable(),
  })
  .meta({ id: 'ChatSettings' });

export const queuedMessageSchema = z
  .object({
    queuedMessageId: z.uuid(),
    position: z.number().int().min(1),
    parts: z.array(z.unknown()),
    metadata: z.record(z.string(), z.string()).nullable(),
    priority: z.enum(PRIORITIES),
    createdAt: z.iso.datetime(),
  })
  .meta({ id: 'QueuedMessage' });

export const queuedMessageListSchema = z.object({ queuedMessages: z.array(queuedMessageSchema) }).meta({ id: 'QueuedMessageList' });

export const chatSchema = z
  .object({
    chatId: z.uuid(),
    sessionId: z.uuid().describe('the chat’s session: its workspace is at /api/sessions/{sessionId}/workspace'),
    workspace: z.boolean().describe('whether the chat’s runs work in the session’s workspace'),
    title: z.string().nullable(),
    status: z.enum(['idle', 'busy', 'error']).describe('error: idle, and its last run failed'),
    activeRunId: z.uuid().nullable(),
    lastError: z
      .object({ code: z.string(), message: z.string(), runId: z.uuid(), at: z.string() })
      .nullable()
      .describe('the last run’s error while the chat is in error; cleared when a run of the chat starts'),
    labels: z.record(z.string(), z.string()),
    queuedMessages: z.number().int(),
    settings: chatSettingsSchema,
    archived: z.boolean(),
    createdAt: z.iso.datetime(),
    lastActivityAt: z.iso.datetime(),
  })
  .meta({ id: 'Chat' });

export const chatListSchema = z.object({ chats: z.array(chatSchema), nextCursor: z.string().nullable() }).meta({ id: 'ChatList' });

export const chatListQuerySchema = z.strictObject({
  archived: z.enum(['true', 'false']).default('false'),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(200).optional(),
  q: z.string().min(1).max(200).optional().describe('the title contains this (case-insensitive)'),
  label: z
    .string()
    .max(400)
    .regex(/^[^:]{1,64}:.{0,256}$/s, 'is not key:value')
    .optional()
    .describe('key:value — chats with that label'),
  status: z.enum(['idle', 'busy', 'error']).optional(),
});

/** A chat's labels (SPEC section 19): at most 20 string pairs. */
export const chatLabelsSchema = z
  .record(
    z
      .string()
      .min(1)
      .max(64)
      .regex(/^[^:]+$/, 'must not contain ":"'),
    z.string().max(256),
  )
  .refine((labels) => Object.keys(labels).length <= 20, 'at most 20 labels');

/** POST /api/chats/{chatId}/regenerate (SPEC section 19): which answer (default: the last), and the model to answer with. */
export const regenerateBodySchema = z.strictObject({
  messageId: z.string().min(1).max(100).optional(),
  model: z.string().min(1).max(200).optional(),
});

/** PATCH /api/chats/{chatId} (SPEC section 19): rename (a title set here is never replaced by a generated one) and label. */
export const chatPatchBodySchema = z.strictObject({
  title: z.string().trim().min(1).max(200).nullable().optional(),
  labels: chatLabelsSchema.optional(),
});

export const interruptResponseSchema = z.object({ chatId: z.uuid(), runId: z.uuid(), status: runStatusSchema }).meta({ id: 'InterruptResponse' });

export const deleteChatResponseSchema = z.object({ chatId: z.uuid(), deleted: z.literal(true), runs: z.number().int() }).meta({ id: 'DeleteChatResponse' });

export const promoteResponseSchema = z.object({ chatId: z.uuid(), queuedMessageId: z.uuid(), position: z.literal(1) }).meta({ id: 'PromoteResponse' });

export const queuedMessageParamsSchema = z.object({ chatId: z.uuid(), queuedMessageId: z.uuid() });
