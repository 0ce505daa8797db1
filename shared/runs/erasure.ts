import type { Db } from '../infra/db.js';
import type { RedisClient } from '../infra/redis.js';
import type { RunAdmission } from '../flow/runAdmission.js';
import { runEventKeys } from '../stream/events.js';

/**
 * Erases a chat whole (SPEC section 17): its sessions go, and with them, by the schema's cascades, the
 * chat, its runs, messages, steps, attempts, cleanup records, keys and stream tokens, webhook events
 * and deliveries, queued messages, compactions; then its runs' Redis leftovers (event streams, fences, jobs).
 * Null when there is no such chat in the account (accountId null: any account's, for operators).
 */
export async function eraseChat(
  deps: { db: Db; redis: RedisClient; admission: RunAdmission; prefix: string },
  chatId: string,
  accountId: string | null,
  opts: { onlyIf?: (tx: Pick<Db, '$queryRaw'>) => Promise<boolean> } = {},
): Promise<{ runs: number } | null> {
  const runIds = await deps.db.$transaction(async (tx) => {
    const [chat] = await tx.$queryRaw<{ session_id: string }[]>`
      SELECT session_id::text FROM chats WHERE id = ${chatId}::uuid AND (${accountId}::uuid IS NULL OR account_id = ${accountId}::uuid) FOR UPDATE`;
    if (!chat) return null;
    // A caller's condition, checked under the chat's lock (a message sent meanwhile holds it first).
    if (opts.onlyIf && !(await opts.onlyIf(tx))) return null;
    const runs = await tx.$queryRaw<{ id: string; session_id: string }[]>`SELECT id::text, session_id::text FROM runs WHERE chat_id = ${chatId}::uuid`;
    const sessions = [...new Set([chat.session_id, ...runs.map((run) => run.session_id)])];
    await tx.$executeRaw`DELETE FROM sessions WHERE id = ANY(${sessions}::uuid[])`;
    return runs.map((run) => run.id);
  });
  if (!runIds) return null;
  for (const runId of runIds) {
    const keys = runEventKeys(deps.prefix, runId);
    await deps.redis.del(keys.stream);
    await deps.redis.del(keys.fence);
    await deps.admission.withdraw(runId).catch(() => {});
  }
  return { runs: runIds.length };
}
