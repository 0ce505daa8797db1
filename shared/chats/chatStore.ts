import type { SqlTx } from '../infra/db.js';

/**
 * The chats table's one home: every statement that changes a chat's row (and the reads that lock
 * it) is here; the api's use cases and the workers call these. The queue of a chat's messages is
 * in queuedMessages.ts, starting its next message in promotion.ts, generated titles in titleJobs.ts.
 */

/** The account's chat (any chat for an operator: `accountId` null) locked for the transaction, or null when there is none. */
export async function lockChat(tx: SqlTx, chatId: string, accountId: string | null): Promise<{ settings: unknown; archivedAt: Date | null } | null> {
  const [chat] = await tx.$queryRaw<{ settings: unknown; archived_at: Date | null }[]>`
    SELECT settings, archived_at FROM chats
    WHERE id = ${chatId}::uuid AND (${accountId}::uuid IS NULL OR account_id = ${accountId}::uuid) FOR UPDATE`;
  return chat ? { settings: chat.settings, archivedAt: chat.archived_at } : null;
}

/** A message was sent: the chat's settings as that message left them, and its activity (retention counts from it). */
export async function saveChatSettings(tx: SqlTx, chatId: string, settings: unknown): Promise<void> {
  await tx.$executeRaw`UPDATE chats SET settings = ${JSON.stringify(settings)}::jsonb, last_activity_at = now() WHERE id = ${chatId}::uuid`;
}

/** Archives the chat (once; archiving again keeps the first time) and drops its queued messages; false when there is no such chat. */
export async function archiveChat(tx: SqlTx, chatId: string, accountId: string | null): Promise<boolean> {
  const updated = await tx.$executeRaw`
    UPDATE chats SET archived_at = COALESCE(archived_at, now())
    WHERE id = ${chatId}::uuid AND (${accountId}::uuid IS NULL OR account_id = ${accountId}::uuid)`;
  if (updated === 0) return false;
  await tx.$executeRaw`DELETE FROM queued_messages WHERE chat_id = ${chatId}::uuid`;
  return true;
}

/** The chat takes messages again; false when there is no such chat. */
export async function unarchiveChat(db: SqlTx, chatId: string, accountId: string): Promise<boolean> {
  return (await db.$executeRaw`UPDATE chats SET archived_at = NULL WHERE id = ${chatId}::uuid AND account_id = ${accountId}::uuid`) > 0;
}

/**
 * A person names the chat (null clears the title; either way no generated title replaces it after
 * that) and/or sets its labels (replacing them); false when there is no such chat.
 */
export async function renameChat(
  db: SqlTx,
  chatId: string,
  accountId: string,
  change: { title?: string | null; labels?: Record<string, string> },
): Promise<boolean> {
  const updated = await db.$executeRaw`
    UPDATE chats SET
      title = CASE WHEN ${change.title !== undefined} THEN ${change.title ?? null}::text ELSE title END,
      title_manual = title_manual OR ${change.title !== undefined},
      labels = COALESCE(${change.labels === undefined ? null : JSON.stringify(change.labels)}::jsonb, labels)
    WHERE id = ${chatId}::uuid AND account_id = ${accountId}::uuid`;
  return updated > 0;
}

/** The title goes back to the model (a generated one may replace a person's again); false when there is no such chat. */
export async function handTitleToModel(tx: SqlTx, chatId: string, accountId: string): Promise<boolean> {
  return (await tx.$executeRaw`UPDATE chats SET title_manual = false WHERE id = ${chatId}::uuid AND account_id = ${accountId}::uuid`) > 0;
}

/** Whether the chat's next runs work in its session's workspace (SPEC section 18). */
export async function setChatWorkspaceOn(tx: SqlTx, chatId: string, accountId: string, on: boolean): Promise<void> {
  await tx.$executeRaw`UPDATE chats SET workspace = ${on} WHERE id = ${chatId}::uuid AND account_id = ${accountId}::uuid`;
}

/** The chats' titles and creation times, by id (for the live events). */
export async function chatHeads(db: SqlTx, chatIds: string[]): Promise<Map<string, { id: string; title: string | null; created_at: Date }>> {
  const rows = await db.$queryRaw<{ id: string; title: string | null; created_at: Date }[]>`
    SELECT id::text, title, created_at FROM chats WHERE id = ANY(${chatIds}::uuid[])`;
  return new Map(rows.map((chat) => [chat.id, chat]));
}
