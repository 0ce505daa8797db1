import type { SqlTx } from '../infra/db.js';
import { ACTIVE_STATUSES } from './lifecycle.js';

/**
 * An edit or a regenerate (SPEC section 19) takes a chat's turns from `fromSeq` on out of its
 * history: the runs that answered them, and an active one, are marked discarded — whatever they
 * persist later (an interrupted answer) is not shown nor sent to a model again. Their status, usage
 * and cleanup are untouched: this is not a transition.
 */
export async function discardRunsFrom(tx: SqlTx, chatId: string, fromSeq: bigint): Promise<void> {
  await tx.$executeRaw`
    UPDATE runs SET discarded = true
    WHERE chat_id = ${chatId}::uuid AND NOT discarded
      AND (id IN (SELECT run_id FROM messages WHERE chat_id = ${chatId}::uuid AND seq >= ${fromSeq} AND run_id IS NOT NULL)
        OR status = ANY(${[...ACTIVE_STATUSES]}::run_status[]))`;
}

/**
 * The chat's history from `fromSeq` on leaves it (kept for audit: never shown, never sent): its
 * runs marked discarded, its messages from there, and the compactions that summarised any of them.
 * False (nothing changed) when the message `messageId` that starts it already left the history.
 */
export async function discardHistoryFrom(tx: SqlTx, chatId: string, from: { messageId: string; fromSeq: bigint }): Promise<boolean> {
  const [still] = await tx.$queryRaw<{ id: string }[]>`
    SELECT m.id FROM messages m WHERE m.id = ${from.messageId} AND m.chat_id = ${chatId}::uuid AND m.discarded_at IS NULL
      AND NOT EXISTS (SELECT 1 FROM runs d WHERE d.id = m.run_id AND d.discarded)`;
  if (!still) return false;
  await discardRunsFrom(tx, chatId, from.fromSeq);
  await tx.$executeRaw`UPDATE messages SET discarded_at = now() WHERE chat_id = ${chatId}::uuid AND seq >= ${from.fromSeq} AND discarded_at IS NULL`;
  await tx.$executeRaw`DELETE FROM chat_compactions WHERE chat_id = ${chatId}::uuid AND through_seq >= ${from.fromSeq}`;
  return true;
}
