import { archiveChat as archiveChatRow, unarchiveChat as unarchiveChatRow } from '../../shared/chats/chatStore.js';
import type { ApiDeps } from '../deps.js';
import type { Caller } from '../http/http.js';
import { chatNotFound } from './chatErrors.js';
import { interruptActiveRun } from './interruptChat.js';
import { getChat, requireAccountCaller, type ChatView } from './readChats.js';

/**
 * Archives a chat (an operator, with no account, any chat): it takes no more messages, its queued
 * messages are dropped and its active run interrupted. 404 when there is no such chat.
 */
export async function closeChat(deps: ApiDeps, caller: Caller, chatId: string): Promise<void> {
  await deps.db.$transaction(async (tx) => {
    if (!(await archiveChatRow(tx, chatId, caller.accountId ?? null))) throw chatNotFound();
  });
  await interruptActiveRun(deps, caller, chatId);
}

/** POST /api/chats/{chatId}/archive. */
export async function archiveChat(deps: ApiDeps, caller: Caller, chatId: string): Promise<ChatView> {
  requireAccountCaller(caller);
  await closeChat(deps, caller, chatId);
  deps.logger.info('chat archived', { chatId });
  return getChat(deps, caller, chatId);
}

/** POST /api/chats/{chatId}/unarchive: it takes messages again. */
export async function unarchiveChat(deps: ApiDeps, caller: Caller, chatId: string): Promise<ChatView> {
  requireAccountCaller(caller);
  if (!(await unarchiveChatRow(deps.db, chatId, caller.accountId!))) throw chatNotFound();
  return getChat(deps, caller, chatId);
}
