import { Prisma, type SqlTx } from '../infra/db.js';

/**
 * The queued_messages table's one home: a chat's messages waiting behind its active run, in the
 * order they will run (`position`; a message sent with onBusy "interrupt" or moved to the front
 * takes the first position less one). Starting the first of them is promotion.ts.
 */
export type QueuedMessageRow = { id: string; parts: unknown[]; run: { metadata?: Record<string, string> | null; priority?: string }; created_at: Date };

/** How many wait, and the first and last positions (null when none wait). */
export async function queueOf(tx: SqlTx, chatId: string): Promise<{ count: number; first: bigint | null; last: bigint | null }> {
  const [queue] = await tx.$queryRaw<{ count: number; first: bigint | null; last: bigint | null }[]>`
    SELECT count(*)::int AS count, min(position) AS first, max(position) AS last FROM queued_messages WHERE chat_id = ${chatId}::uuid`;
  return queue ?? { count: 0, first: null, last: null };
}

/** Queues a message at `position`, with the run it will start (its settings as sent). */
export async function addQueuedMessage(
  tx: SqlTx,
  message: { id: string; chatId: string; accountId: string; position: bigint; parts: unknown[]; run: unknown },
): Promise<void> {
  await tx.$executeRaw`
    INSERT INTO queued_messages (id, chat_id, account_id, position, parts, run)
    VALUES (${message.id}::uuid, ${message.chatId}::uuid, ${message.accountId}::uuid, ${message.position}, ${JSON.stringify(message.parts)}::jsonb, ${JSON.stringify(message.run)}::jsonb)`;
}

/** The chat's queued messages in the order they will run. */
export async function queuedMessagesOf(db: SqlTx, chatId: string): Promise<QueuedMessageRow[]> {
  return db.$queryRaw<QueuedMessageRow[]>`SELECT id::text, parts, run, created_at FROM queued_messages WHERE chat_id = ${chatId}::uuid ORDER BY position, seq`;
}

/** Takes a queued message back; false once it has become a run (or was never the chat's). */
export async function deleteQueuedMessage(tx: SqlTx, chatId: string, queuedMessageId: string): Promise<boolean> {
  return (await tx.$executeRaw`DELETE FROM queued_messages WHERE id = ${queuedMessageId}::uuid AND chat_id = ${chatId}::uuid`) > 0;
}

/** Moves a queued message before all others (reordering only: nothing starts); false once it has become a run. */
export async function moveQueuedMessageToFront(tx: SqlTx, chatId: string, queuedMessageId: string): Promise<boolean> {
  const moved = await tx.$executeRaw`
    UPDATE queued_messages SET position = (SELECT min(position) - 1 FROM queued_messages WHERE chat_id = ${chatId}::uuid)
    WHERE id = ${queuedMessageId}::uuid AND chat_id = ${chatId}::uuid`;
  return moved > 0;
}

/** The number of messages queued in the chat `chatId` (an SQL expression, such as `c.id`), as an SQL scalar subquery. */
export const queuedCountOf = (chatId: Prisma.Sql) => Prisma.sql`(SELECT count(*)::int FROM queued_messages q WHERE q.chat_id = ${chatId})`;

/** Whether messages are queued in the chat `chatId` (an SQL expression), as an SQL condition. */
export const hasQueuedMessages = (chatId: Prisma.Sql) => Prisma.sql`EXISTS (SELECT 1 FROM queued_messages q WHERE q.chat_id = ${chatId})`;
