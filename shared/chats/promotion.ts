import { ACTIVE_STATUSES } from '../runs/lifecycle.js';
import type { SqlTx } from '../infra/db.js';

/**
 * Promotion: a chat's first queued message becoming its next run. It happens in the database
 * (`runyard_start_next_queued_message`, defined in the migrations and shown in
 * prisma/current-state.sql), in the transaction that ends the chat's active run — a trigger calls it
 * — so no run ends without its successor starting, whoever ends it. These are the two other ways
 * in: an idle chat whose first message was moved to the front, and the sweep's held messages.
 * (Moving a message to the front of the queue is reordering: queuedMessages.ts.)
 */

/** Starts the chat's first queued message now (the chat is idle); its run's id, or null when nothing could start. */
export async function startNextQueuedMessage(tx: SqlTx, chatId: string): Promise<string | null> {
  const [row] = await tx.$queryRaw<{ run_id: string | null }[]>`SELECT runyard_start_next_queued_message(${chatId}::uuid)::text AS run_id`;
  return row?.run_id ?? null;
}

/**
 * Queued messages of idle chats: held back when their chat's run ended while the account was over a
 * spend limit (SPEC section 14: they wait, they are not dropped). Started once the period rolled
 * over or the limit was raised (the function checks again under the chat's lock); how many started.
 */
export async function startHeldMessages(db: SqlTx, batch: number): Promise<number> {
  const started = await db.$queryRaw<{ run_id: string | null }[]>`
    SELECT runyard_start_next_queued_message(h.chat_id)::text AS run_id FROM (
      SELECT DISTINCT q.chat_id FROM queued_messages q
      WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.chat_id = q.chat_id AND r.status = ANY(${[...ACTIVE_STATUSES]}::run_status[]))
      LIMIT ${batch}) h`;
  return started.filter((row) => row.run_id !== null).length;
}
