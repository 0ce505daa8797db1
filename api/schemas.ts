import { ACCOUNT_GROUPS, ADMIN_GROUPS } from '../shared/accounts/usageReports.js';
import { KEYED_PROVIDERS, PROVIDERS } from '../shared/agent/providerTable.js';
import { ON_BUSY } from '../shared/chats/busyPolicy.js';
import { extendZodWithOpenApi } from '@asteasolutions/zod-to-openapi';
import { PRIORITIES } from '../shared/flow/priorities.js';
import { z } from 'zod';
import { workspaceRequestSchema } from '../shared/workspaces/workspaceRequest.js';
import { FINISH_REASONS, RUN_STATUSES } from '../shared/runs/lifecycle.js';
import { DURATION_PATTERN } from '../shared/infra/durations.js';

// The schemas the routes validate with; api/http/openapi.ts builds /openapi.json from these same objects.
extendZodWithOpenApi(z);

const textPart = z.strictObject({ type: z.literal('text'), text: z.string().max(100_000) }).meta({ id: 'TextPart' });
const stepStartPart = z.strictObject({ type: z.literal('step-start') }).meta({ id: 'StepStartPart' });

/** An attachment as the AI SDK writes it (SPEC section 20): `url` a data: URL or runyard:file/<fileId>. */
const filePart = z
  .strictObject({
    type: z.literal('file'),
    mediaType: z.string().min(1).max(200),
    url: z.string().min(1).max(1_500_000),
    filename: z.string().max(1_000).optional(),
    providerMetadata: z.unknown().optional(),
  })
  .meta({ id: 'FilePart', description: 'A file: a data: URL, or runyard:file/<fileId> for a file uploaded with POST /api/files.' });

/** A tool call of an earlier assistant message, with its result (the AI SDK's UIMessage tool part). */
const toolPart = z
  .strictObject({
    type: z.string().regex(/^tool-[A-Za-z0-9_-]{1,64}$/, 'must be "tool-<toolName>"'),
    toolCallId: z.string().min(1).max(200),
    state: z.enum(['output-available', 'output-error', 'output-denied']),
    input: z.unknown().optional(),
    rawInput: z.unknown().optional(),
    output: z.unknown().optional(),
    errorText: z.string().max(100_000).optional(),
  })
  .meta({ id: 'ToolPart', description: 'A tool call and its result, as the messages endpoint returns it.' });

export const uiMessageSchema = z
  .strictObject({
    id: z.string().min(1).max(200).optional(),
    role: z.enum(['user', 'assistant', 'system']),
    parts: z
      .array(z.union([textPart, stepStartPart, filePart, toolPart]))
      .min(1)
      .max(500),
  })
  .superRefine((message, ctx) => {
    message.parts.forEach((part, index) => {
      if (part.type === 'file' && message.role !== 'user') {
        ctx.addIssue({ code: 'custom', path: ['parts', index, 'type'], message: 'only a user message carries files' });
      } else if (part.type !== 'text' && part.type !== 'file' && message.role !== 'assistant') {
        ctx.addIssue({ code: 'custom', path: ['parts', index, 'type'], message: `a ${message.role} message holds text and file parts only` });
      }
    });
  })
  .meta({ id: 'UIMessage' });

export const toolDefinitionSchema = z
  .strictObject({
    name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1 to 64 letters, digits, _ or -'),
    description: z.string().max(10_000).optional(),
    inputSchema: z.record(z.string(), z.unknown()).meta({ description: 'A JSON Schema (draft-07) object describing the input' }),
    url: z
      .url({ protocol: /^https?$/ })
      .max(2_000)
      .optional()
      .meta({ description: 'A server tool: the url a worker POSTs each call to (on TOOL_URL_ALLOWLIST)' }),
    requireApproval: z.boolean().optional(),
  })
  .meta({ id: 'ToolDefinition' });

const metadataSchema = z
  .record(z.string().min(1).max(100), z.string().max(1_000))
  .refine((value) => Object.keys(value).length <= 20, 'at most 20 metadata pairs');

const webhookSchema = z
  .strictObject({
    url: z.url({ protocol: /^https?$/ }).max(2_000),
    events: z
      .array(z.string().max(100))
      .max(10)
      .optional()
      .meta({ description: `A subset of ${'run.started, run.requires_action, run.completed, run.failed, run.cancelled'}; default all but run.started` }),
  })
  .meta({ id: 'RunWebhook', description: 'Where runyard POSTs this run’s events (signed per Standard Webhooks)' });

const secretName = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'is not a secret name');

const mcpServersSchema = z
  .array(
    z
      .strictObject({
        name: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, 'must be 1 to 32 letters, digits, _ or -'),
        url: z.url({ protocol: /^https?$/ }).max(2_000),
        auth: z
          .union([
            z.strictObject({
              secret: secretName,
              header: z
                .string()
                .regex(/^[A-Za-z0-9-]{1,64}$/, 'is not a header name')
                .refine(
                  (name) => !['host', 'content-length', 'content-type', 'x-runyard-run-key', 'transfer-encoding', 'connection'].includes(name.toLowerCase()),
                  'cannot carry a secret',
                )
                .optional(),
            }),
            z.strictObject({
              oauth2: z.strictObject({
                tokenUrl: z.url({ protocol: /^https?$/ }).max(2_000),
                clientId: z.string().min(1).max(500),
                clientSecret: secretName.describe('the account secret holding the client secret'),
                scope: z.string().max(1_000).optional(),
              }),
            }),
          ])
          .optional()
          .describe(
            'an account secret sent as "Authorization: Bearer <value>" (or as the value of `header`), or OAuth2 client credentials (a token fetched from tokenUrl, cached until it expires, renewed once on a 401); the run key then goes as x-runyard-run-key',
          ),
      })
      .meta({ id: 'McpServer' }),
  )
  .max(8)
  .meta({ description: 'MCP servers (streamable HTTP) whose tools the model is offered as <name>__<tool>' });

const maxStepsSchema = z.number().int().min(1).max(100).meta({ description: 'Model calls the agent loop may make (default 20)' });

/** Tool names and MCP server names are unique in a request. */
function checkNamesUnique(body: { tools?: { name: string }[]; mcpServers?: { name: string }[] }, ctx: z.RefinementCtx): void {
  const names = new Set<string>();
  body.tools?.forEach((tool, index) => {
    if (names.has(tool.name)) ctx.addIssue({ code: 'custom', path: ['tools', index, 'name'], message: `"${tool.name}" is declared twice` });
    names.add(tool.name);
  });
  const servers = new Set<string>();
  body.mcpServers?.forEach((server, index) => {
    if (servers.has(server.name)) ctx.addIssue({ code: 'custom', path: ['mcpServers', index, 'name'], message: `"${server.name}" is declared twice` });
    servers.add(server.name);
  });
}

export const startRunBodySchema = z
  .strictObject({
    prompt: z.string().trim().min(1).max(100_000).optional(),
    messages: z.array(uiMessageSchema).min(1).max(500).optional(),
    model: z.string().min(3).max(200).optional(),
    system: z.string().max(100_000).optional(),
    maxOutputTokens: z.number().int().min(1).max(32_000).optional(),
    title: z.string().min(1).max(200).optional(),
    metadata: metadataSchema.optional(),
    tools: z.array(toolDefinitionSchema).max(64).optional(),
    webhook: webhookSchema.optional(),
    mcpServers: mcpServersSchema.optional(),
    workspace: workspaceRequestSchema
      .optional()
      .describe('the session’s workspace (SPEC section 18): true, false (off for this chat), or { files, repo } to make it with'),
    maxSteps: maxStepsSchema.optional(),
    priority: z.enum(PRIORITIES).optional().meta({ description: 'Within the account, higher priority runs start first (default normal)' }),
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

export const runStatusSchema = z.enum(RUN_STATUSES);

/** POST /api/chats/{chatId}/messages (SPEC section 12). */
export const sendMessageBodySchema = z
  .strictObject({
    prompt: z.string().trim().min(1).max(100_000).optional(),
    message: uiMessageSchema.optional().meta({ description: 'One UI message from the user (text parts)' }),
    model: z.string().min(3).max(200).optional(),
    system: z.string().max(100_000).optional(),
    maxOutputTokens: z.number().int().min(1).max(32_000).optional(),
    metadata: metadataSchema.optional(),
    tools: z.array(toolDefinitionSchema).max(64).optional(),
    webhook: webhookSchema.optional(),
    mcpServers: mcpServersSchema.optional(),
    workspace: workspaceRequestSchema
      .optional()
      .describe('the session’s workspace (SPEC section 18): true, false (off for this chat), or { files, repo } to make it with'),
    maxSteps: maxStepsSchema.optional(),
    priority: z.enum(PRIORITIES).optional().meta({ description: 'Within the account, higher priority runs start first (default normal)' }),
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

export const startRunResponseSchema = z
  .object({ runId: z.uuid(), chatId: z.uuid(), sessionId: z.uuid(), status: z.literal('queued') })
  .meta({ id: 'StartRunResponse' });

export const usageSchema = z
  .object({
    inputTokens: z.number().int(),
    outputTokens: z.number().int(),
    cachedInputTokens: z.number().int(),
    reasoningTokens: z.number().int(),
    totalTokens: z.number().int(),
    estimated: z
      .literal(true)
      .optional()
      .describe('Part of it is an estimate: a model call cut short (cancel, interrupt, a failed attempt) before the provider counted it'),
  })
  .meta({ id: 'Usage' });

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

/** since / until on the admin routes: an ISO timestamp, or a duration back from now (`2h`), as the CLI takes them. */
const pointInTimeSchema = z
  .union([z.iso.datetime({ offset: true }), z.string().regex(DURATION_PATTERN)], { error: 'must be an ISO timestamp or a duration such as 30m, 2h, 7d' })
  .meta({ description: 'An ISO 8601 timestamp, or a duration back from now: 30s, 15m, 2h, 7d' });

export const operatorRunListQuerySchema = z.strictObject({
  status: runStatusSchema.optional(),
  since: pointInTimeSchema.optional(),
  limit: z.coerce.number().int().min(1).max(1_000).default(50),
});

export const operatorRunListSchema = z
  .object({
    runs: z.array(
      z.object({
        runId: z.uuid(),
        accountId: z.uuid(),
        status: runStatusSchema,
        model: z.string(),
        attempt: z.number().int(),
        createdAt: z.iso.datetime(),
        finishedAt: z.iso.datetime().nullable(),
        errorCode: z.string().nullable(),
        traceId: z.string().nullable(),
      }),
    ),
  })
  .meta({ id: 'OperatorRunList' });

export const replayBulkBodySchema = z
  .strictObject({
    status: z.literal('failed'),
    since: pointInTimeSchema.optional(),
    until: pointInTimeSchema.optional(),
    model: z.string().max(200).optional(),
    accountId: z.uuid().optional(),
    limit: z.number().int().min(1).max(1_000).default(100),
    dryRun: z.boolean().default(false),
  })
  .meta({ id: 'BulkReplayRequest' });
export type ReplayBulkBody = z.infer<typeof replayBulkBodySchema>;

export const webhookRedeliverBodySchema = z
  .strictObject({
    status: z.literal('failed'),
    since: pointInTimeSchema.optional(),
    limit: z.number().int().min(1).max(10_000).default(1_000),
  })
  .meta({ id: 'WebhookRedeliverRequest' });

export const webhookDeliveryListSchema = z
  .object({
    events: z.array(
      z.object({
        eventId: z.uuid(),
        webhookId: z.string(),
        type: z.string(),
        status: z.enum(['pending', 'delivered', 'failed']),
        attempts: z.number().int(),
        createdAt: z.iso.datetime(),
        deliveredAt: z.iso.datetime().nullable(),
        nextAttemptAt: z.iso.datetime().nullable(),
        lastError: z.string().nullable(),
        deliveries: z.array(
          z.object({ at: z.iso.datetime(), statusCode: z.number().int().nullable(), latencyMs: z.number().int(), error: z.string().nullable() }),
        ),
      }),
    ),
  })
  .meta({ id: 'WebhookDeliveryList' });

export const replayResponseSchema = z.object({ runId: z.uuid(), status: runStatusSchema, attempt: z.number().int() }).meta({ id: 'ReplayResponse' });

export const replayBulkResponseSchema = z
  .object({
    dryRun: z.boolean(),
    runs: z.array(z.object({ runId: z.uuid(), model: z.string().nullable(), replayed: z.boolean(), error: z.string().nullable() })),
  })
  .meta({ id: 'BulkReplayResponse' });

export const whoamiSchema = z
  .object({
    accountId: z.uuid().nullable().meta({ description: 'null for the ADMIN_TOKEN' }),
    accountName: z.string().nullable(),
    keyId: z.uuid().nullable(),
    kind: z.enum(['account', 'ephemeral', 'stream', 'admin_token']),
    scopes: z.array(z.string()),
    runId: z.uuid().nullable(),
  })
  .meta({ id: 'WhoAmI' });

export const errorSchema = z
  .object({
    error: z.string(),
    detail: z.string(),
    fix: z.string(),
    docUrl: z.string(),
    requestId: z.string(),
    details: z.record(z.string(), z.unknown()).optional().meta({ description: 'Facts of the error, e.g. chat_busy: { activeRunId }' }),
  })
  .meta({ id: 'Error' });

export const runIdParamsSchema = z.object({ runId: z.uuid() });
export const chatIdParamsSchema = z.object({ chatId: z.uuid() });

/** PUT /api/admin/accounts/{account}/limits (SPEC section 14): per UTC calendar period; null (or absent) means no limit of that kind. */
export const accountLimitsBodySchema = z
  .strictObject({
    period: z.enum(['day', 'week', 'month']),
    spendMicros: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).nullable().optional(),
    tokens: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).nullable().optional(),
  })
  .refine((body) => body.spendMicros != null || body.tokens != null, { message: 'set spendMicros, tokens or both (DELETE clears the limits)' })
  .meta({ id: 'AccountLimitsRequest' });

/** PATCH /api/admin/accounts/{account}/settings: null puts a setting back to the deployment's default. */
export const accountSettingsBodySchema = z
  .strictObject({
    retentionDays: z.number().int().min(1).max(36_500).nullable().optional(),
    compactionThresholdPercent: z.number().int().min(1).max(100).nullable().optional(),
    weight: z.number().int().min(1).max(1000).nullable().optional().meta({ description: 'Its share of a saturated fleet against other accounts (default 1)' }),
    maxRunning: z.number().int().min(1).max(1_000_000).nullable().optional().meta({ description: 'Its running runs fleet-wide at most (null: no cap)' }),
    fileQuotaMb: z
      .number()
      .int()
      .min(1)
      .max(10_000_000)
      .nullable()
      .optional()
      .meta({ description: 'What its uploaded files may hold together, MiB (null: FILE_QUOTA_MB)' }),
  })
  .meta({ id: 'AccountSettingsRequest' });

// An account's name or id: printable text (a NUL or control character names no account; Postgres refuses NUL in text).
export const accountParamsSchema = z.strictObject({
  account: z
    .string()
    .min(1)
    .max(200)
    .regex(/^[^\p{Cc}]+$/u, 'has control characters'),
});

const limitReachedSchema = z.object({
  kind: z.enum(['tokens', 'spendMicros']),
  limit: z.number().int(),
  consumed: z.number().int(),
  period: z.enum(['day', 'week', 'month']),
  resetsAt: z.string(),
});

/** GET /api/usage and the admin account usage routes. */
export const accountUsageSchema = z
  .object({
    period: z.enum(['day', 'week', 'month']),
    periodStart: z.string(),
    resetsAt: z.string(),
    consumed: z.object({ tokens: z.number().int(), spendMicros: z.number().int() }),
    limits: z.object({ spendMicros: z.number().int().nullable(), tokens: z.number().int().nullable() }).nullable(),
    limitReached: limitReachedSchema.nullable(),
  })
  .meta({ id: 'AccountUsage' });

export const accountSettingsSchema = z
  .object({
    account: z.string(),
    accountId: z.uuid(),
    retentionDays: z.number().int().nullable().describe('null: kept until an operator sets a period (RETENTION_DAYS has no default)'),
    retentionDaysIsDefault: z.boolean(),
    compactionThresholdPercent: z.number().int(),
    compactionThresholdIsDefault: z.boolean(),
    weight: z.number().int(),
    maxRunning: z.number().int().nullable(),
    fileQuotaMb: z.number().int(),
    fileQuotaIsDefault: z.boolean(),
  })
  .meta({ id: 'AccountSettings' });

export const erasedAccountSchema = z
  .object({ account: z.string(), accountId: z.uuid(), deleted: z.literal(true), chats: z.number().int(), runs: z.number().int() })
  .meta({ id: 'ErasedAccount' });

/** GET /api/admin/runs/{runId}/timeline (SPEC section 16): the run's attempts, steps, calls, waits and deliveries, in start order. */
export const runTimelineSchema = z.object({
  runId: z.uuid(),
  chatId: z.uuid(),
  accountId: z.uuid(),
  status: z.string(),
  model: z.string(),
  episode: z.number().int(),
  attempts: z.number().int(),
  traceId: z.string().nullable(),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
  replayable: z.boolean(),
  items: z.array(
    z.object({
      id: z.string(),
      parentId: z.string().nullable(),
      kind: z.enum(['run', 'queued', 'attempt', 'model_call', 'tool_call', 'wait', 'compaction', 'webhook_delivery', 'cleanup']),
      name: z.string(),
      startedAt: z.string(),
      endedAt: z.string().nullable(),
      outcome: z.string(),
      error: z.string().nullable(),
      details: z.record(z.string(), z.unknown()),
    }),
  ),
});

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

/** PUT /api/admin/models/{provider}/{model}: the operator's row (a field not sent keeps its value; null prices: unpriced). */
export const catalogueEntryBodySchema = z.strictObject({
  inputUsdPerMTok: z.number().min(0).max(1_000_000).nullable().optional(),
  outputUsdPerMTok: z.number().min(0).max(1_000_000).nullable().optional(),
  cachedInputUsdPerMTok: z.number().min(0).max(1_000_000).nullable().optional(),
  contextTokens: z.number().int().min(16).max(100_000_000).nullable().optional(),
  images: z.boolean().optional(),
  pdf: z.boolean().optional(),
  disabled: z.boolean().optional(),
  default: z.boolean().optional(),
});

export const catalogueModelParamsSchema = z.strictObject({
  provider: z.enum(PROVIDERS),
  model: z.string().regex(/^[\w.:-]{1,120}$/, 'is not a model name'),
});

/** PUT /api/admin/accounts/{account}/secrets/{name} */
export const accountSecretBodySchema = z.strictObject({ value: z.string().min(1).max(16_384) });
export const accountSecretParamsSchema = z.strictObject({
  account: z.string().min(1).max(200),
  name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'is not a secret name'),
});

/** PUT /api/admin/accounts/{account}/provider-keys/{provider} (SPEC section 21): the account's own key (and base URL). */
export const providerKeyBodySchema = z.strictObject({
  key: z.string().min(8).max(4_096),
  baseUrl: z
    .url({ protocol: /^https?$/ })
    .max(2_000)
    .nullable()
    .optional(),
});
export const providerKeyParamsSchema = z.strictObject({ account: z.string().min(1).max(200), provider: z.enum(KEYED_PROVIDERS) });
export const providerKeyListSchema = z.object({
  providerKeys: z.array(z.object({ provider: z.string(), baseUrl: z.string().nullable(), updatedAt: z.string() })),
});

const reportPeriod = {
  from: z.iso.datetime({ offset: true }).or(z.iso.date()).optional().describe('default: the start of this UTC month'),
  to: z.iso.datetime({ offset: true }).or(z.iso.date()).optional().describe('exclusive; default: now'),
};
/** GET /api/usage/report (SPEC section 21). */
export const usageReportQuerySchema = z.strictObject({ ...reportPeriod, groupBy: z.enum(ACCOUNT_GROUPS) });
/** GET /api/admin/usage/report (SPEC section 21). */
export const adminUsageReportQuerySchema = z.strictObject({ ...reportPeriod, groupBy: z.enum(ADMIN_GROUPS) });
export const usageReportSchema = z.object({
  from: z.string(),
  to: z.string(),
  groupBy: z.string(),
  rows: z.array(z.record(z.string(), z.union([z.string(), z.number()]))),
});

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
