import { extendZodWithOpenApi } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { DEFAULT_MAX_STEPS, RUN_STATUSES } from '../../shared/runs/lifecycle.js';
import { PRIORITIES } from '../../shared/flow/priorities.js';
import { workspaceRequestSchema } from '../../shared/workspaces/workspaceRequest.js';

// The request pieces and answers more than one resource uses (messages, tools, MCP servers,
// webhooks, statuses, errors, ids), and who the caller is. zod with OpenAPI metadata:
// api/http/openapi.ts builds /openapi.json from these objects and each resource's schemas.ts.
extendZodWithOpenApi(z);

export const textPart = z.strictObject({ type: z.literal('text'), text: z.string().max(100_000) }).meta({ id: 'TextPart' });

export const stepStartPart = z.strictObject({ type: z.literal('step-start') }).meta({ id: 'StepStartPart' });

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
export const toolPart = z
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

export const metadataSchema = z
  .record(z.string().min(1).max(100), z.string().max(1_000))
  .refine((value) => Object.keys(value).length <= 20, 'at most 20 metadata pairs');

export const webhookSchema = z
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

export const mcpServersSchema = z
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

export const maxStepsSchema = z
  .number()
  .int()
  .min(1)
  .max(100)
  .meta({ description: `Model calls the agent loop may make (default ${DEFAULT_MAX_STEPS})` });

/** What POST /api/chat/runs and a chat message both take for the run they start (one definition for both requests). */
export const runRequestFields = {
  prompt: z.string().trim().min(1).max(100_000).optional(),
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
};

/** Tool names and MCP server names are unique in a request. */
export function checkNamesUnique(body: { tools?: { name: string }[]; mcpServers?: { name: string }[] }, ctx: z.RefinementCtx): void {
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

export const runStatusSchema = z.enum(RUN_STATUSES);

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
