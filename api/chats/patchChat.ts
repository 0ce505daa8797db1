import type { ApiDeps } from '../deps.js';
import type { Caller } from '../http.js';
import { chatNotFound } from './chatErrors.js';
import { getChat, requireAccountCaller, type ChatView } from './readChats.js';

/**
 * PATCH /api/chats/{chatId} (SPEC section 19): renames the chat (null clears the title) and sets its
 * labels (replacing them: at most 20 string pairs).
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
      labels = COALESCE(${change.labels === undefined ? null : JSON.stringify(change.labels)}::jsonb, labels)
    WHERE id = ${chatId}::uuid AND account_id = ${caller.accountId}::uuid`;
  if (updated === 0) throw chatNotFound();
  return getChat(deps, caller, chatId);
}
