import { setTimeout as sleep } from 'node:timers/promises';
import type { ApiDeps } from '../deps.js';
import type { Caller } from '../http/http.js';
import type { SendMessageBody } from './schemas.js';
import { chatNotFound, messageNotEditable, messageNotFound } from './chatErrors.js';
import { requireAccountCaller } from './readChats.js';
import { sendMessage, type MessageStartedRun, type SentMessage } from './sendMessage.js';

/** How long an edit of a busy chat waits for the interrupted run to end and its own run to start, before answering that it is queued. */
const STARTS_WITHIN_MS = 5_000;

type HistoryMessage = { id: string; seq: bigint; role: string; parts: { type: string; text?: string }[] };

/** The chat's messages still in its history (an edit's or a regenerate's discarded ones are not), oldest first. */
async function historyOf(deps: ApiDeps, caller: Caller, chatId: string): Promise<HistoryMessage[]> {
  requireAccountCaller(caller);
  const chat = await deps.db.chat.findFirst({ where: { id: chatId, accountId: caller.accountId! }, select: { id: true } });
  if (!chat) throw chatNotFound();
  return deps.db.$queryRaw<HistoryMessage[]>`
    SELECT m.id, m.seq, m.role::text, m.parts FROM messages m
    WHERE m.chat_id = ${chatId}::uuid AND m.discarded_at IS NULL AND NOT EXISTS (SELECT 1 FROM runs d WHERE d.id = m.run_id AND d.discarded)
    ORDER BY m.seq`;
}

/** A busy chat's rewrite is queued first and starts when the interrupted run ends: its run, once it exists (or the queued answer). */
async function startedRun(deps: ApiDeps, sent: SentMessage): Promise<SentMessage> {
  if (!('queuedMessageId' in sent)) return sent;
  const deadline = Date.now() + STARTS_WITHIN_MS;
  while (Date.now() < deadline) {
    const [run] = await deps.db.$queryRaw<{ run_id: string; session_id: string; message_id: string }[]>`
      SELECT r.id::text AS run_id, r.session_id::text, m.id AS message_id FROM runs r JOIN messages m ON m.run_id = r.id AND m.role = 'user'
      WHERE r.queued_message_id = ${sent.queuedMessageId}::uuid LIMIT 1`;
    if (run)
      return { runId: run.run_id, chatId: sent.chatId, sessionId: run.session_id, status: 'queued', messageId: run.message_id } satisfies MessageStartedRun;
    await sleep(50);
  }
  return sent;
}

/**
 * PATCH /api/chats/{chatId}/messages/{messageId} (SPEC section 19): the user message and every
 * message after it leave the history (kept for audit: never shown, never sent to a model again;
 * their usage stays charged), a compaction that covered them is dropped, and a new run answers the
 * edited text, a new message. A busy chat's active run is interrupted first; queued messages follow.
 */
export async function editMessage(deps: ApiDeps, caller: Caller, chatId: string, messageId: string, body: SendMessageBody): Promise<SentMessage> {
  const target = (await historyOf(deps, caller, chatId)).find((message) => message.id === messageId);
  if (!target) throw messageNotFound();
  if (target.role !== 'user') throw messageNotEditable();
  return startedRun(deps, await sendMessage(deps, caller, chatId, { ...body, onBusy: 'interrupt' }, undefined, { fromSeq: target.seq, messageId }));
}

/**
 * POST /api/chats/{chatId}/regenerate (SPEC section 19): the assistant message (default: the last)
 * and what follows it leave the history, and a new run answers the same user message (shown once:
 * it goes back into the history as the new run's message).
 */
export async function regenerate(deps: ApiDeps, caller: Caller, chatId: string, body: { messageId?: string; model?: string }): Promise<SentMessage> {
  const history = await historyOf(deps, caller, chatId);
  const answer = body.messageId ? history.find((message) => message.id === body.messageId) : history.findLast((message) => message.role === 'assistant');
  if (body.messageId && !answer) throw messageNotFound();
  if (answer && answer.role !== 'assistant') throw messageNotFound();
  const question = history.findLast((message) => message.role === 'user' && (!answer || message.seq < answer.seq));
  if (!question) throw messageNotFound();
  const parts = question.parts
    .filter((part) => part.type === 'text' && typeof part.text === 'string')
    .map((part) => ({ type: 'text' as const, text: part.text! }));
  const message = { role: 'user' as const, parts };
  return startedRun(
    deps,
    await sendMessage(deps, caller, chatId, { message, ...(body.model ? { model: body.model } : {}), onBusy: 'interrupt' }, undefined, {
      fromSeq: question.seq,
      messageId: question.id,
    }),
  );
}
