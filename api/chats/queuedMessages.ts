import { Prisma, type SqlTx } from '../../shared/infra/db.js';
import { activeRunIdOf } from '../../shared/runs/activeRun.js';
import { lockChat } from '../../shared/chats/chatStore.js';
import { deleteQueuedMessage as deleteQueuedMessageOf, moveQueuedMessageToFront, queuedMessagesOf } from '../../shared/chats/queuedMessages.js';
import { startNextQueuedMessage } from '../../shared/chats/promotion.js';
import type { ApiDeps } from '../deps.js';
import type { Caller } from '../http/http.js';
import { chatNotFound, queuedMessageNotFound } from './chatErrors.js';
import { interruptActiveRun } from './interruptChat.js';
import { requireAccountCaller } from './readChats.js';

async function lockCallersChat(tx: SqlTx, caller: Caller, chatId: string): Promise<void> {
  if (!(await lockChat(tx, chatId, caller.accountId!))) throw chatNotFound();
}

/** GET /api/chats/{chatId}/queued-messages: in the order they will run (an operator sees any chat's). */
export async function listQueuedMessages(deps: ApiDeps, caller: Caller, chatId: string) {
  requireAccountCaller(caller);
  const chat = await deps.db.chat.findFirst({ where: { id: chatId, ...(caller.accountId ? { accountId: caller.accountId } : {}) }, select: { id: true } });
  if (!chat) throw chatNotFound();
  const rows = await queuedMessagesOf(deps.db, chatId);
  return {
    queuedMessages: rows.map((row, index) => ({
      queuedMessageId: row.id,
      position: index + 1,
      parts: row.parts,
      metadata: row.run.metadata ?? null,
      priority: (row.run.priority ?? 'normal') as 'high' | 'normal' | 'low',
      createdAt: row.created_at.toISOString(),
    })),
  };
}

/** DELETE /api/chats/{chatId}/queued-messages/{id}: 404 once it has become a run. */
export async function deleteQueuedMessage(deps: ApiDeps, caller: Caller, chatId: string, queuedMessageId: string): Promise<void> {
  requireAccountCaller(caller);
  await deps.db.$transaction(async (tx) => {
    await lockCallersChat(tx, caller, chatId);
    if (!(await deleteQueuedMessageOf(tx, chatId, queuedMessageId))) throw queuedMessageNotFound();
  });
}

/**
 * POST /api/chats/{chatId}/queued-messages/{id}/promote: to the front of the queue, and the active
 * run is interrupted (its end starts this message's run). A chat with no active run starts it now.
 */
export async function promoteQueuedMessage(
  deps: ApiDeps,
  caller: Caller,
  chatId: string,
  queuedMessageId: string,
): Promise<{ chatId: string; queuedMessageId: string; position: 1 }> {
  requireAccountCaller(caller);
  const wasActive = await deps.db.$transaction(async (tx) => {
    await lockCallersChat(tx, caller, chatId);
    const [{ id: activeRunId }] = (await tx.$queryRaw<{ id: string | null }[]>`SELECT ${activeRunIdOf(Prisma.sql`${chatId}::uuid`)} AS id`) as [
      { id: string | null },
    ];
    if (!(await moveQueuedMessageToFront(tx, chatId, queuedMessageId))) throw queuedMessageNotFound();
    if (activeRunId) return activeRunId;
    // Idle (its queue was left waiting): the message becomes a run now — and nothing is interrupted.
    await startNextQueuedMessage(tx, chatId);
    return null;
  });
  // Busy: the run that was active stops, and its end starts this message's run (never the new run itself).
  if (wasActive) await interruptActiveRun(deps, caller, chatId, wasActive);
  return { chatId, queuedMessageId, position: 1 };
}
