import { Prisma } from '../../shared/infra/db.js';
import { activeRunIdOf } from '../../shared/runs/activeRun.js';
import type { ApiDeps } from '../deps.js';
import type { Caller } from '../http.js';
import { chatNotFound, queuedMessageNotFound } from './chatErrors.js';
import { interruptActiveRun } from './interruptChat.js';
import { requireAccountCaller } from './readChats.js';

type QueuedRow = { id: string; parts: unknown[]; run: { metadata?: Record<string, string> | null; priority?: string }; created_at: Date };

async function lockChat(tx: Pick<ApiDeps['db'], '$queryRaw'>, caller: Caller, chatId: string): Promise<void> {
  const [chat] = await tx.$queryRaw<
    { id: string }[]
  >`SELECT id::text FROM chats WHERE id = ${chatId}::uuid AND account_id = ${caller.accountId}::uuid FOR UPDATE`;
  if (!chat) throw chatNotFound();
}

/** GET /api/chats/{chatId}/queued-messages: in the order they will run (an operator sees any chat's). */
export async function listQueuedMessages(deps: ApiDeps, caller: Caller, chatId: string) {
  requireAccountCaller(caller);
  const chat = await deps.db.chat.findFirst({ where: { id: chatId, ...(caller.accountId ? { accountId: caller.accountId } : {}) }, select: { id: true } });
  if (!chat) throw chatNotFound();
  const rows = await deps.db.$queryRaw<QueuedRow[]>`
    SELECT id::text, parts, run, created_at FROM queued_messages WHERE chat_id = ${chatId}::uuid ORDER BY position, seq`;
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
    await lockChat(tx, caller, chatId);
    const deleted = await tx.$executeRaw`DELETE FROM queued_messages WHERE id = ${queuedMessageId}::uuid AND chat_id = ${chatId}::uuid`;
    if (deleted === 0) throw queuedMessageNotFound();
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
    await lockChat(tx, caller, chatId);
    const [{ id: activeRunId }] = (await tx.$queryRaw<{ id: string | null }[]>`SELECT ${activeRunIdOf(Prisma.sql`${chatId}::uuid`)} AS id`) as [
      { id: string | null },
    ];
    const moved = await tx.$executeRaw`
      UPDATE queued_messages SET position = (SELECT min(position) - 1 FROM queued_messages WHERE chat_id = ${chatId}::uuid)
      WHERE id = ${queuedMessageId}::uuid AND chat_id = ${chatId}::uuid`;
    if (moved === 0) throw queuedMessageNotFound();
    if (activeRunId) return activeRunId;
    // Idle (its queue was left waiting): the message becomes a run now — and nothing is interrupted.
    await tx.$queryRaw`SELECT runyard_start_next_queued_message(${chatId}::uuid)::text AS run_id`;
    return null;
  });
  // Busy: the run that was active stops, and its end starts this message's run (never the new run itself).
  if (wasActive) await interruptActiveRun(deps, caller, chatId, wasActive);
  return { chatId, queuedMessageId, position: 1 };
}
