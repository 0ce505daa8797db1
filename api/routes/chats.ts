import { Router, type Request } from 'express';
import { notFound } from '../../shared/infra/errors.js';
import type { ApiDeps } from '../deps.js';
import { callerOf, idempotencyKeyOf, jsonBody } from '../http/http.js';
import { listMessages } from '../runs/listMessages.js';
import { requireScope } from '../http/middleware/authenticate.js';
import { chatListQuerySchema, chatPatchBodySchema, regenerateBodySchema, queuedMessageParamsSchema, sendMessageBodySchema } from '../chats/schemas.js';
import { chatIdParamsSchema } from '../http/schemas.js';
import { messageListQuerySchema, streamQuerySchema } from '../runs/schemas.js';
import { archiveChat, unarchiveChat } from '../chats/archiveChat.js';
import { deleteChat } from '../chats/deleteChat.js';
import { queuedMessageNotFound } from '../chats/chatErrors.js';
import { interruptChat } from '../chats/interruptChat.js';
import { deleteQueuedMessage, listQueuedMessages, promoteQueuedMessage } from '../chats/queuedMessages.js';
import { getChat, listChats } from '../chats/readChats.js';
import { sendMessage } from '../chats/sendMessage.js';
import { patchChat, requestTitle } from '../chats/patchChat.js';
import { editMessage, regenerate } from '../chats/rewriteChat.js';
import { streamChat } from '../chats/streamChat.js';
import { accountSubjectFor, chatSubjectFor, streamChatEvents } from '../chats/chatEventStream.js';
import { mintChatStreamToken } from '../streams/streamTokens.js';

/** A malformed id can never name a chat: answer exactly as for an unknown one. */
function chatIdOf(req: Request): string {
  const params = chatIdParamsSchema.safeParse(req.params);
  if (!params.success) throw notFound('chat_not_found', 'The chat');
  return params.data.chatId;
}

function queuedMessageOf(req: Request): { chatId: string; queuedMessageId: string } {
  const chatId = chatIdOf(req);
  const params = queuedMessageParamsSchema.safeParse(req.params);
  if (!params.success) throw queuedMessageNotFound();
  return { chatId, queuedMessageId: params.data.queuedMessageId };
}

/** Conversations (SPEC section 12): a chat goes on across runs. */
export function chatRoutes(deps: ApiDeps): Router {
  const router = Router();
  router.get('/', requireScope('runs:read'), async (req, res) => {
    res.json(await listChats(deps, callerOf(req), chatListQuerySchema.parse(req.query)));
  });
  router.get('/events', requireScope('runs:read'), async (req, res) => {
    streamQuerySchema.parse(req.query);
    const caller = callerOf(req);
    await streamChatEvents(deps, req, res, caller, accountSubjectFor(caller));
  });
  router.get('/:chatId', requireScope('runs:read'), async (req, res) => {
    res.json(await getChat(deps, callerOf(req), chatIdOf(req)));
  });
  router.patch('/:chatId', requireScope('runs:write'), async (req, res) => {
    res.json(await patchChat(deps, callerOf(req), chatIdOf(req), chatPatchBodySchema.parse(jsonBody(req))));
  });
  router.patch('/:chatId/messages/:messageId', requireScope('runs:write'), async (req, res) => {
    const chatId = chatIdOf(req);
    const body = sendMessageBodySchema.parse(jsonBody(req));
    const sent = await editMessage(deps, callerOf(req), chatId, String(req.params.messageId), body);
    if ('runId' in sent) res.location(`/api/chat/runs/${sent.runId}`);
    res.status(202).json(sent);
  });
  router.post('/:chatId/title', requireScope('runs:write'), async (req, res) => {
    res.status(202).json(await requestTitle(deps, callerOf(req), chatIdOf(req)));
  });
  router.post('/:chatId/regenerate', requireScope('runs:write'), async (req, res) => {
    const chatId = chatIdOf(req);
    const sent = await regenerate(deps, callerOf(req), chatId, regenerateBodySchema.parse(req.body ?? {}));
    if ('runId' in sent) res.location(`/api/chat/runs/${sent.runId}`);
    res.status(202).json(sent);
  });
  router.get('/:chatId/messages', requireScope('runs:read'), async (req, res) => {
    res.json(await listMessages(deps, callerOf(req), chatIdOf(req), messageListQuerySchema.parse(req.query)));
  });
  router.post('/:chatId/messages', requireScope('runs:write'), async (req, res) => {
    const chatId = chatIdOf(req);
    const body = sendMessageBodySchema.parse(jsonBody(req));
    const sent = await sendMessage(deps, callerOf(req), chatId, body, idempotencyKeyOf(req));
    if ('runId' in sent) res.location(`/api/chat/runs/${sent.runId}`);
    res.status(202).json(sent);
  });
  router.get('/:chatId/stream', requireScope('runs:read'), async (req, res) => {
    const { after } = streamQuerySchema.parse(req.query);
    await streamChat(deps, req, res, callerOf(req), chatIdOf(req), after);
  });
  router.get('/:chatId/events', requireScope('runs:read'), async (req, res) => {
    streamQuerySchema.parse(req.query);
    const caller = callerOf(req);
    await streamChatEvents(deps, req, res, caller, await chatSubjectFor(deps, caller, chatIdOf(req)));
  });
  router.post('/:chatId/stream-token', requireScope('runs:read'), async (req, res) => {
    res.status(201).json(await mintChatStreamToken(deps, callerOf(req), chatIdOf(req)));
  });
  router.post('/:chatId/interrupt', requireScope('runs:write'), async (req, res) => {
    res.status(202).json(await interruptChat(deps, callerOf(req), chatIdOf(req)));
  });
  router.get('/:chatId/queued-messages', requireScope('runs:read'), async (req, res) => {
    res.json(await listQueuedMessages(deps, callerOf(req), chatIdOf(req)));
  });
  router.delete('/:chatId/queued-messages/:queuedMessageId', requireScope('runs:write'), async (req, res) => {
    const { chatId, queuedMessageId } = queuedMessageOf(req);
    await deleteQueuedMessage(deps, callerOf(req), chatId, queuedMessageId);
    res.status(204).end();
  });
  router.post('/:chatId/queued-messages/:queuedMessageId/promote', requireScope('runs:write'), async (req, res) => {
    const { chatId, queuedMessageId } = queuedMessageOf(req);
    res.status(202).json(await promoteQueuedMessage(deps, callerOf(req), chatId, queuedMessageId));
  });
  router.delete('/:chatId', requireScope('runs:write'), async (req, res) => {
    res.status(202).json(await deleteChat(deps, callerOf(req), chatIdOf(req)));
  });
  router.post('/:chatId/archive', requireScope('runs:write'), async (req, res) => {
    res.json(await archiveChat(deps, callerOf(req), chatIdOf(req)));
  });
  router.post('/:chatId/unarchive', requireScope('runs:write'), async (req, res) => {
    res.json(await unarchiveChat(deps, callerOf(req), chatIdOf(req)));
  });
  return router;
}
