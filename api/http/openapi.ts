import { OpenAPIRegistry, OpenApiGeneratorV31 } from '@asteasolutions/zod-to-openapi';
import { KEYED_PROVIDERS, PROVIDERS } from '../../shared/agent/providerTable.js';
import { z } from 'zod';
import * as common from './schemas.js';
import * as admin from '../admin/schemas.js';
import * as chats from '../chats/schemas.js';
import * as files from '../files/schemas.js';
import * as models from '../models/schemas.js';
import * as runs from '../runs/schemas.js';
import * as sessions from '../sessions/schemas.js';
import * as usage from '../usage/schemas.js';

/** Every resource's schemas (each in its folder's schemas.ts), as one document's components. */
const s = { ...common, ...runs, ...chats, ...files, ...sessions, ...admin, ...usage, ...models };

/** /openapi.json, generated from the zod schemas the routes validate with. */
export function buildOpenApiDocument(serverUrl?: string) {
  const registry = new OpenAPIRegistry();
  const bearer = registry.registerComponent('securitySchemes', 'bearer', {
    type: 'http',
    scheme: 'bearer',
    description: 'ry_sk_ account key or ry_ek_ run key',
  });
  const apiKey = registry.registerComponent('securitySchemes', 'apiKey', { type: 'apiKey', in: 'header', name: 'x-api-key' });
  const security = [{ [bearer.name]: [] }, { [apiKey.name]: [] }];
  const json = (schema: z.ZodType, description: string) => ({ description, content: { 'application/json': { schema } } });
  const errors = Object.fromEntries(
    [
      [
        '400',
        'Invalid request (validation_failed, unknown_field, invalid_json, model_unavailable, invalid_tool_schema, tool_url_not_allowed, webhook_url_not_allowed)',
      ],
      ['401', 'unauthorized'],
      ['403', 'scope_denied, or cross_site_request (a state-changing admin request from another origin)'],
      ['404', 'Not found, or another account’s'],
      ['405', 'method_not_allowed (the path takes other methods: see Allow)'],
      ['415', 'unsupported_media_type (a POST that is not JSON; admin POSTs must say application/json even without a body)'],
      ['429', 'rate_limited, too_many_active_runs, chat_queue_full or usage_limit_exceeded (details: kind, limit, consumed, resetsAt)'],
      ['503', 'queue_unavailable or database_unavailable'],
    ].map(([status, description]) => [status, json(s.errorSchema, description!)]),
  );
  const runId = z.object({ runId: z.uuid() });

  registry.registerPath({
    method: 'post',
    path: '/api/chat/runs',
    summary: 'Start a run',
    security,
    request: {
      headers: z.object({ 'Idempotency-Key': z.string().max(255).optional() }),
      body: { content: { 'application/json': { schema: s.startRunBodySchema } } },
    },
    responses: {
      202: json(s.startRunResponseSchema, 'Accepted; the run is queued'),
      413: json(s.errorSchema, 'Body over 1 MiB'),
      422: json(s.errorSchema, 'idempotency_key_reused'),
      ...errors,
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/api/chat/runs',
    summary: 'List your runs, newest first',
    security,
    request: { query: s.runListQuerySchema },
    responses: { 200: json(s.runListSchema, 'A page of runs'), ...errors },
  });
  registry.registerPath({
    method: 'get',
    path: '/api/chat/runs/{runId}',
    summary: 'Get a run',
    security,
    request: { params: runId },
    responses: { 200: json(s.runSchema, 'The run'), ...errors },
  });
  registry.registerPath({
    method: 'get',
    path: '/api/chat/runs/{runId}/stream',
    summary: 'Live output (AI SDK UI message stream v1 over SSE); resume with Last-Event-ID or ?after=',
    security,
    request: { params: runId, query: s.streamQuerySchema, headers: z.object({ 'Last-Event-ID': z.string().optional() }) },
    responses: {
      200: { description: 'text/event-stream', content: { 'text/event-stream': { schema: z.string() } } },
      204: { description: 'The run is over and the client has its last event: stop reconnecting' },
      ...errors,
    },
  });
  registry.registerPath({
    method: 'post',
    path: '/api/chat/runs/{runId}/cancel',
    summary: 'Cancel a run',
    security,
    request: { params: runId },
    responses: { 202: json(s.cancelRunResponseSchema, 'Cancelled, or cancelling'), 409: json(s.errorSchema, 'run_finished'), ...errors },
  });
  registry.registerPath({
    method: 'post',
    path: '/api/chat/runs/{runId}/tool-results',
    summary: 'Answer every pending tool call of a run in requires_action (client tool results, approvals)',
    security,
    request: {
      params: runId,
      headers: z.object({ 'Idempotency-Key': z.string().max(255).optional() }),
      body: { content: { 'application/json': { schema: s.toolResultsBodySchema } } },
    },
    responses: {
      202: json(s.toolResultsResponseSchema, 'Accepted; the run continues'),
      400: json(s.errorSchema, 'tool_result_duplicate, tool_result_missing, tool_result_unexpected, validation_failed'),
      409: json(s.errorSchema, 'run_not_waiting'),
      ...Object.fromEntries(Object.entries(errors).filter(([status]) => status !== '400')),
    },
  });
  registry.registerPath({
    method: 'post',
    path: '/api/chat/runs/{runId}/stream-token',
    summary: 'Mint a short-lived read-only token for this run (for a web page’s EventSource: ?token= on the stream)',
    security,
    request: { params: runId },
    responses: { 201: json(s.streamTokenResponseSchema, 'The token (shown once)'), ...errors },
  });
  registry.registerPath({
    method: 'get',
    path: '/api/chat/runs/{runId}/webhook-deliveries',
    summary: 'The run’s webhook events and every delivery attempt',
    security,
    request: { params: runId },
    responses: { 200: json(s.webhookDeliveryListSchema, 'The delivery log'), ...errors },
  });
  registry.registerPath({
    method: 'post',
    path: '/api/admin/webhook-events/{eventId}/redeliver',
    summary: 'Send a webhook event again, same webhook-id (admin)',
    security,
    request: { params: z.object({ eventId: z.uuid() }) },
    responses: { 202: json(z.object({ eventId: z.uuid(), status: z.literal('pending') }), 'Queued for delivery'), ...errors },
  });
  registry.registerPath({
    method: 'post',
    path: '/api/admin/webhook-events/redeliver',
    summary: 'Send every failed webhook event again (admin)',
    security,
    request: { body: { content: { 'application/json': { schema: s.webhookRedeliverBodySchema } } } },
    responses: { 202: json(z.object({ eventIds: z.array(z.uuid()) }), 'The events queued for delivery'), ...errors },
  });
  registry.registerPath({
    method: 'get',
    path: '/api/chats/{chatId}/messages',
    summary: 'A chat’s messages, oldest first',
    security,
    request: { params: s.chatIdParamsSchema, query: s.messageListQuerySchema },
    responses: { 200: json(s.messageListSchema, 'A page of messages'), ...errors },
  });
  const chatId = s.chatIdParamsSchema;
  const busy = json(s.errorSchema, 'chat_busy (details.activeRunId), chat_archived, chat_idle');
  registry.registerPath({
    method: 'post',
    path: '/api/chats/{chatId}/messages',
    summary: 'Send the chat’s next user message: it starts a run, or waits behind the active one (onBusy)',
    security,
    request: {
      params: chatId,
      headers: z.object({ 'Idempotency-Key': z.string().max(255).optional() }),
      body: { content: { 'application/json': { schema: s.sendMessageBodySchema } } },
    },
    responses: { 202: json(s.sendMessageResponseSchema, 'A run started, or the message queued'), 409: busy, ...errors },
  });
  registry.registerPath({
    method: 'get',
    path: '/api/chats',
    summary: 'Your chats, most recent activity first',
    security,
    request: { query: s.chatListQuerySchema },
    responses: { 200: json(s.chatListSchema, 'A page of chats'), ...errors },
  });
  registry.registerPath({
    method: 'get',
    path: '/api/chats/{chatId}',
    summary: 'A chat: idle or busy, its active run, queued messages and settings',
    security,
    request: { params: chatId },
    responses: { 200: json(s.chatSchema, 'The chat'), ...errors },
  });
  registry.registerPath({
    method: 'get',
    path: '/api/chats/{chatId}/stream',
    summary: 'The stream of the chat’s active run (as the run’s stream); 204 when it has none (the AI SDK’s resumeStream)',
    security,
    request: { params: chatId, query: s.streamQuerySchema, headers: z.object({ 'Last-Event-ID': z.string().optional() }) },
    responses: {
      200: { description: 'text/event-stream', content: { 'text/event-stream': { schema: z.string() } } },
      204: { description: 'The chat has no active run' },
      ...errors,
    },
  });
  const eventsRequest = { query: s.streamQuerySchema, headers: z.object({ 'Last-Event-ID': z.string().optional() }) };
  registry.registerPath({
    method: 'get',
    path: '/api/chats/{chatId}/events',
    summary:
      'The chat’s live events across its runs (SPEC section 19), as SSE: chat.status, chat.messages, chat.queue, chat.action_required, chat.title, chat.archived; resumable with Last-Event-ID; open while the chat is idle (keep-alive comments); ended by chat.deleted. Each event’s data is JSON with its `type` and `chatId`. A stream token of one of its runs may read it (?token=)',
    security,
    request: { params: chatId, ...eventsRequest },
    responses: { 200: { description: 'text/event-stream', content: { 'text/event-stream': { schema: z.string() } } }, ...errors },
  });
  registry.registerPath({
    method: 'get',
    path: '/api/chats/events',
    summary: 'The account’s chats as they change, as SSE: chat.created, chat.status, chat.title, chat.archived, chat.deleted; resumable with Last-Event-ID',
    security,
    request: eventsRequest,
    responses: { 200: { description: 'text/event-stream', content: { 'text/event-stream': { schema: z.string() } } }, ...errors },
  });
  registry.registerPath({
    method: 'post',
    path: '/api/chats/{chatId}/stream-token',
    summary: 'A short-lived read-only token for a page that follows the chat: its events, its stream, its messages (scoped to its latest run)',
    security,
    request: { params: chatId },
    responses: {
      201: { description: 'The token', content: { 'application/json': { schema: z.object({ token: z.string(), expiresAt: z.string(), runId: z.uuid() }) } } },
      ...errors,
    },
  });
  registry.registerPath({
    method: 'post',
    path: '/api/chats/{chatId}/interrupt',
    summary: 'Stop the chat’s active run (partial answer kept; a parked run’s calls closed with an interrupted result)',
    security,
    request: { params: chatId },
    responses: { 202: json(s.interruptResponseSchema, 'Interrupted'), 409: busy, ...errors },
  });
  registry.registerPath({
    method: 'get',
    path: '/api/chats/{chatId}/queued-messages',
    summary: 'The chat’s queued messages, in the order they will run',
    security,
    request: { params: chatId },
    responses: { 200: json(s.queuedMessageListSchema, 'The queue'), ...errors },
  });
  registry.registerPath({
    method: 'delete',
    path: '/api/chats/{chatId}/queued-messages/{queuedMessageId}',
    summary: 'Drop a queued message (404 once it has become a run)',
    security,
    request: { params: s.queuedMessageParamsSchema },
    responses: { 204: { description: 'Dropped' }, ...errors },
  });
  registry.registerPath({
    method: 'post',
    path: '/api/chats/{chatId}/queued-messages/{queuedMessageId}/promote',
    summary: 'Move a queued message to the front; the active run is interrupted',
    security,
    request: { params: s.queuedMessageParamsSchema },
    responses: { 202: json(s.promoteResponseSchema, 'Promoted'), ...errors },
  });
  registry.registerPath({
    method: 'get',
    path: '/api/admin/chats/{chatId}',
    summary: 'Any account’s chat and its queued messages (admin)',
    security,
    request: { params: chatId },
    responses: { 200: json(s.chatSchema.extend({ queue: z.array(s.queuedMessageSchema) }), 'The chat and its queue'), ...errors },
  });
  registry.registerPath({
    method: 'delete',
    path: '/api/chats/{chatId}',
    summary: 'Erase a chat now: its active run interrupted, then everything of it gone from Postgres and Redis',
    security,
    request: { params: chatId },
    responses: { 202: json(s.deleteChatResponseSchema, 'Erased'), ...errors },
  });
  for (const action of ['archive', 'unarchive'] as const) {
    registry.registerPath({
      method: 'post',
      path: `/api/chats/{chatId}/${action}`,
      summary:
        action === 'archive' ? 'Archive a chat: no more messages; its queue dropped, its active run interrupted' : 'Let an archived chat take messages again',
      security,
      request: { params: chatId },
      responses: { 200: json(s.chatSchema, 'The chat'), ...errors },
    });
  }
  registry.registerPath({
    method: 'post',
    path: '/api/admin/runs/{runId}/replay',
    summary: 'Replay a terminal run (admin)',
    security,
    request: { params: runId },
    responses: { 202: json(s.replayResponseSchema, 'Queued again'), 409: json(s.errorSchema, 'run_not_terminal'), ...errors },
  });
  registry.registerPath({
    method: 'get',
    path: '/api/admin/runs/{runId}/timeline',
    summary: 'A run’s timeline: attempts, steps, model and tool calls, waits, compactions, webhook deliveries (admin; the page /admin/runs/{runId} draws it)',
    security,
    request: { params: runId },
    responses: { 200: json(s.runTimelineSchema, 'The timeline'), ...errors },
  });
  registry.registerPath({
    method: 'get',
    path: '/api/admin/runs',
    summary: 'Runs of every account, newest first (admin; the CLI’s runs list)',
    security,
    request: { query: s.operatorRunListQuerySchema },
    responses: { 200: json(s.operatorRunListSchema, 'The runs'), ...errors },
  });
  registry.registerPath({
    method: 'post',
    path: '/api/admin/runs/replay',
    summary: 'Replay failed runs in bulk (admin)',
    security,
    request: { body: { content: { 'application/json': { schema: s.replayBulkBodySchema } } } },
    responses: { 200: json(s.replayBulkResponseSchema, 'The runs replayed (or that would be)'), ...errors },
  });
  registry.registerPath({
    method: 'get',
    path: '/api/usage',
    summary: 'Your account’s consumption this period (tokens, spend), its limits and when the period resets',
    security,
    responses: { 200: json(s.accountUsageSchema, 'Usage'), ...errors },
  });
  const account = z.object({ account: z.string() });
  registry.registerPath({
    method: 'get',
    path: '/api/admin/accounts/{account}/usage',
    summary: 'An account’s consumption and limits (admin; account by name or id)',
    security,
    request: { params: account },
    responses: { 200: json(s.accountUsageSchema, 'Usage'), ...errors },
  });
  registry.registerPath({
    method: 'put',
    path: '/api/admin/accounts/{account}/limits',
    summary: 'Set an account’s spend limits for a UTC calendar period (admin)',
    security,
    request: { params: account, body: { content: { 'application/json': { schema: s.accountLimitsBodySchema } } } },
    responses: { 200: json(s.accountUsageSchema, 'The account’s usage with its new limits'), ...errors },
  });
  registry.registerPath({
    method: 'delete',
    path: '/api/admin/accounts/{account}/limits',
    summary: 'Clear an account’s spend limits (admin)',
    security,
    request: { params: account },
    responses: { 200: json(s.accountUsageSchema, 'The account’s usage, without limits'), ...errors },
  });
  registry.registerPath({
    method: 'delete',
    path: '/api/admin/accounts/{account}',
    summary: 'Erase all of an account’s data: keys, chats, runs, messages, usage, then the account (admin)',
    security,
    request: { params: account },
    responses: { 202: json(s.erasedAccountSchema, 'Erased'), ...errors },
  });
  registry.registerPath({
    method: 'get',
    path: '/api/admin/accounts/{account}/provider-keys',
    summary: 'Which providers the account has its own key for (never the keys) (admin)',
    security,
    request: { params: account },
    responses: { 200: json(s.providerKeyListSchema, 'The providers'), ...errors },
  });
  registry.registerPath({
    method: 'put',
    path: '/api/admin/accounts/{account}/provider-keys/{provider}',
    summary: 'Set the account’s own provider key (sealed at rest; its runs use it instead of the deployment’s) (admin)',
    security,
    request: {
      params: account.extend({ provider: z.enum(KEYED_PROVIDERS) }),
      body: { content: { 'application/json': { schema: s.providerKeyBodySchema } } },
    },
    responses: { 200: json(s.providerKeyListSchema, 'The providers'), ...errors },
  });
  registry.registerPath({
    method: 'delete',
    path: '/api/admin/accounts/{account}/provider-keys/{provider}',
    summary: 'Remove the account’s own provider key: its runs use the deployment’s again (admin)',
    security,
    request: { params: account.extend({ provider: z.enum(KEYED_PROVIDERS) }) },
    responses: { 204: { description: 'Removed' }, ...errors },
  });
  registry.registerPath({
    method: 'get',
    path: '/api/admin/accounts/{account}/secrets',
    summary: 'The names of an account’s secrets (never their values) (admin)',
    security,
    request: { params: account },
    responses: { 200: json(z.object({ secrets: z.array(z.object({ name: z.string(), updatedAt: z.string() })) }), 'The names'), ...errors },
  });
  registry.registerPath({
    method: 'put',
    path: '/api/admin/accounts/{account}/secrets/{name}',
    summary: 'Set an account secret, sealed at rest, for its MCP servers’ auth (admin)',
    security,
    request: { params: account.extend({ name: z.string() }), body: { content: { 'application/json': { schema: s.accountSecretBodySchema } } } },
    responses: { 200: json(z.object({ secrets: z.array(z.object({ name: z.string(), updatedAt: z.string() })) }), 'The names'), ...errors },
  });
  registry.registerPath({
    method: 'delete',
    path: '/api/admin/accounts/{account}/secrets/{name}',
    summary: 'Remove an account secret (admin)',
    security,
    request: { params: account.extend({ name: z.string() }) },
    responses: { 204: { description: 'Removed' }, ...errors },
  });
  registry.registerPath({
    method: 'get',
    path: '/api/admin/accounts/{account}/settings',
    summary: 'An account’s retention and compaction threshold (admin)',
    security,
    request: { params: account },
    responses: { 200: json(s.accountSettingsSchema, 'Settings'), ...errors },
  });
  registry.registerPath({
    method: 'patch',
    path: '/api/admin/accounts/{account}/settings',
    summary: 'Change an account’s retention or compaction threshold (null: back to the default) (admin)',
    security,
    request: { params: account, body: { content: { 'application/json': { schema: s.accountSettingsBodySchema } } } },
    responses: { 200: json(s.accountSettingsSchema, 'Settings'), ...errors },
  });
  registry.registerPath({
    method: 'get',
    path: '/api/auth/whoami',
    summary: 'The caller’s identity',
    security,
    responses: { 200: json(s.whoamiSchema, 'Who you are'), ...errors },
  });
  registry.registerPath({
    method: 'get',
    path: '/api/usage/report',
    summary: 'Token and cost sums of the account’s model calls over a period, by day, model, chat or source (JSON, or CSV with Accept: text/csv)',
    security,
    request: { query: s.usageReportQuerySchema },
    responses: { 200: json(s.usageReportSchema, 'The report'), ...errors },
  });
  registry.registerPath({
    method: 'get',
    path: '/api/admin/usage/report',
    summary: 'Token and cost sums of every account’s model calls, by account, model or day (admin; CSV with Accept: text/csv)',
    security,
    request: { query: s.adminUsageReportQuerySchema },
    responses: { 200: json(s.usageReportSchema, 'The report'), ...errors },
  });
  registry.registerPath({
    method: 'get',
    path: '/api/models',
    summary: 'The model catalogue: each model’s id, context window, prices, what it reads, enabled, default (SPEC section 21)',
    security,
    responses: { 200: json(s.modelListSchema, 'The models'), ...errors },
  });
  registry.registerPath({
    method: 'get',
    path: '/api/admin/models',
    summary: 'The model catalogue (admin)',
    security,
    responses: { 200: json(s.modelListSchema, 'The models'), ...errors },
  });
  const catalogueModel = z.object({ provider: z.enum(PROVIDERS), model: z.string() });
  registry.registerPath({
    method: 'put',
    path: '/api/admin/models/{provider}/{model}',
    summary: 'Set the operator’s row for a model: prices (USD per million tokens), context window, what it reads, disabled, default (admin)',
    security,
    request: { params: catalogueModel, body: { content: { 'application/json': { schema: s.catalogueEntryBodySchema } } } },
    responses: { 200: json(s.catalogueModelSchema, 'The model, as the catalogue has it now'), ...errors },
  });
  registry.registerPath({
    method: 'delete',
    path: '/api/admin/models/{provider}/{model}',
    summary: 'Remove the operator’s row: the model goes back to the built-in table (admin)',
    security,
    request: { params: catalogueModel },
    responses: { 204: { description: 'Removed' }, ...errors },
  });
  const chatParams = z.object({ chatId: z.uuid() });
  registry.registerPath({
    method: 'patch',
    path: '/api/chats/{chatId}',
    summary: 'Rename a chat and set its labels (SPEC section 19)',
    security,
    request: { params: chatParams, body: { content: { 'application/json': { schema: s.chatPatchBodySchema } } } },
    responses: { 200: json(s.chatSchema, 'The chat'), ...errors },
  });
  registry.registerPath({
    method: 'patch',
    path: '/api/chats/{chatId}/messages/{messageId}',
    summary:
      'Edit a user message: it and what follows leave the history, a new run answers the edited text (a busy chat’s run interrupted first; answered queued if it has not started within 5 s)',
    security,
    request: { params: chatParams.extend({ messageId: z.string() }), body: { content: { 'application/json': { schema: s.sendMessageBodySchema } } } },
    responses: { 202: json(z.record(z.string(), z.unknown()), '{ runId, chatId, sessionId, status, messageId } (or queued)'), ...errors },
  });
  registry.registerPath({
    method: 'post',
    path: '/api/chats/{chatId}/title',
    summary: 'Generate a new title now (TITLE_MODEL, or the chat’s model); it replaces the current one',
    security,
    request: { params: chatParams },
    responses: { 202: json(z.object({ chatId: z.uuid(), titleRequested: z.literal(true) }), 'Asked for'), ...errors },
  });
  registry.registerPath({
    method: 'post',
    path: '/api/chats/{chatId}/regenerate',
    summary: 'Regenerate an answer (default: the last): it and what follows leave the history, a new run answers the same user message',
    security,
    request: { params: chatParams, body: { content: { 'application/json': { schema: s.regenerateBodySchema } } } },
    responses: { 202: json(z.record(z.string(), z.unknown()), '{ runId, chatId, sessionId, status, messageId } (or queued)'), ...errors },
  });
  const session = z.object({ sessionId: z.uuid() });
  const workspacePath = z.object({ path: z.string().describe('a path in the workspace, relative to /workspace') });
  registry.registerPath({
    method: 'get',
    path: '/api/sessions/{sessionId}/workspace',
    summary: 'A session’s workspace: status, size, version, last use (SPEC section 18)',
    security,
    request: { params: session },
    responses: { 200: json(s.workspaceViewSchema, 'The workspace'), ...errors },
  });
  registry.registerPath({
    method: 'get',
    path: '/api/sessions/{sessionId}/workspace/files',
    summary: 'The workspace’s files under ?path= (default: all), recursively, at its latest persisted version',
    security,
    request: { params: session, query: workspacePath.partial() },
    responses: { 200: json(s.workspaceFilesSchema, 'The files'), ...errors },
  });
  registry.registerPath({
    method: 'get',
    path: '/api/sessions/{sessionId}/workspace/files/content',
    summary: 'Download a file of the workspace',
    security,
    request: { params: session, query: workspacePath },
    responses: { 200: { description: 'The file’s bytes', content: { 'application/octet-stream': { schema: z.string() } } }, ...errors },
  });
  registry.registerPath({
    method: 'put',
    path: '/api/sessions/{sessionId}/workspace/files/content',
    summary: 'Upload a file into the workspace as a new version (the raw body, up to 10 MiB); 409 session_busy while a run of the session is active',
    security,
    request: { params: session, query: workspacePath, body: { content: { 'application/octet-stream': { schema: z.string() } } } },
    responses: { 200: json(s.workspaceViewSchema, 'The workspace, at its new version'), 409: json(s.errorSchema, 'session_busy'), ...errors },
  });
  const file = z.object({ fileId: z.uuid() });
  registry.registerPath({
    method: 'post',
    path: '/api/files',
    summary:
      'Upload a file to attach to messages (SPEC section 20): the raw body with its Content-Type and ?filename=, or multipart/form-data with one file field. PNG, JPEG, GIF, WebP, PDF, plain text, Markdown, CSV, JSON, checked by content; at most FILE_MAX_BYTES; the account’s quota',
    security,
    request: {
      query: z.object({ filename: z.string().optional() }),
      body: { content: { 'application/octet-stream': { schema: z.string() }, 'multipart/form-data': { schema: z.object({ file: z.string() }) } } },
    },
    responses: {
      201: json(s.fileSchema, 'The stored file; attach it as { type: "file", mediaType, url: "runyard:file/<fileId>" }'),
      400: json(s.errorSchema, 'attachment_type_mismatch, file_empty, validation_failed'),
      413: json(s.errorSchema, 'file_too_large, file_quota_exceeded'),
      415: json(s.errorSchema, 'attachment_type_unsupported'),
      ...errors,
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/api/files/{fileId}',
    summary: 'A file’s metadata',
    security,
    request: { params: file },
    responses: { 200: json(s.fileSchema, 'The file'), ...errors },
  });
  registry.registerPath({
    method: 'get',
    path: '/api/files/{fileId}/content',
    summary: 'A file’s bytes (with the account’s key, or ?token= with a stream token of a run whose chat uses it)',
    security,
    request: { params: file, query: z.object({ token: z.string().optional() }) },
    responses: { 200: { description: 'The file’s bytes, as its media type', content: { 'application/octet-stream': { schema: z.string() } } }, ...errors },
  });
  registry.registerPath({
    method: 'delete',
    path: '/api/files/{fileId}',
    summary: 'Delete a file and its bytes (messages that used it show it as gone)',
    security,
    request: { params: file },
    responses: { 204: { description: 'Deleted' }, ...errors },
  });
  registry.registerPath({ method: 'get', path: '/healthz', summary: 'Process alive', responses: { 200: { description: 'ok' } } });
  registry.registerPath({
    method: 'get',
    path: '/readyz',
    summary: 'Postgres and Redis reachable',
    responses: { 200: { description: 'ready' }, 503: { description: 'a dependency is unreachable' } },
  });
  registry.registerPath({ method: 'get', path: '/metrics', summary: 'Prometheus metrics', responses: { 200: { description: 'text/plain' } } });

  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: { title: 'runyard', version: '0.1.0', description: 'Run LLM chat runs on a queue-backed worker fleet.' },
    servers: serverUrl ? [{ url: serverUrl }] : [],
  });
}
