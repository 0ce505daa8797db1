import type { ApiDeps } from '../deps.js';
import type { Caller } from '../http.js';
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
  const updated = await deps.db.$executeRaw`
    UPDATE chats SET
      title = CASE WHEN ${change.title !== undefined} THEN ${change.title ?? null}::text ELSE title END,
      title_manual = title_manual OR ${change.title !== undefined},
      labels = COALESCE(${change.labels === undefined ? null : JSON.stringify(change.labels)}::jsonb, labels)
    WHERE id = ${chatId}::uuid AND account_id = ${caller.accountId}::uuid`;
  if (updated === 0) throw chatNotFound();
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
    const updated = await tx.$executeRaw`UPDATE chats SET title_manual = false WHERE id = ${chatId}::uuid AND account_id = ${caller.accountId}::uuid`;
    if (updated === 0) throw chatNotFound();
    await tx.$executeRaw`
      INSERT INTO chat_title_jobs (chat_id, replace) VALUES (${chatId}::uuid, true)
      ON CONFLICT (chat_id) DO UPDATE SET replace = true, attempts = 0, next_attempt_at = now()`;
  });
  return { chatId, titleRequested: true };
}
