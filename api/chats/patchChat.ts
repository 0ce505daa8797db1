import { handTitleToModel, renameChat } from '../../shared/chats/chatStore.js';
import { requestNewTitle } from '../../shared/chats/titleJobs.js';
import type { ApiDeps } from '../deps.js';
import type { Caller } from '../http/http.js';
import { chatNotFound } from './chatErrors.js';
import { getChat, requireAccountCaller, type ChatView } from './readChats.js';

/**
 * PATCH /api/chats/{chatId} (SPEC section 19): renames the chat (null clears the title; either way no
 * generated title replaces it after that) and sets its labels (replacing them: at most 20 string pairs).
 */
export async function patchChat(
  deps: ApiDeps,
  caller: Caller,
  chatId: string,
  change: { title?: string | null; labels?: Record<string, string> },
): Promise<ChatView> {
  requireAccountCaller(caller);
  if (!(await renameChat(deps.db, chatId, caller.accountId!, change))) throw chatNotFound();
  return getChat(deps, caller, chatId);
}

/**
 * POST /api/chats/{chatId}/title (SPEC section 19): a new generated title now (a worker takes the
 * job at once): it replaces the current one, a person's included — asking for it hands the title
 * back to the model.
 */
export async function requestTitle(deps: ApiDeps, caller: Caller, chatId: string): Promise<{ chatId: string; titleRequested: true }> {
  requireAccountCaller(caller);
  await deps.db.$transaction(async (tx) => {
    if (!(await handTitleToModel(tx, chatId, caller.accountId!))) throw chatNotFound();
    await requestNewTitle(tx, chatId);
  });
  return { chatId, titleRequested: true };
}
