import type { Db } from '../infra/db.js';
import type { RedisClient } from '../infra/redis.js';
import type { RunQueues } from '../infra/runQueues.js';
import { runEventKeys } from '../stream/events.js';
import { ACTIVE_STATUSES } from './lifecycle.js';

/**
 * Erases a chat whole (SPEC section 17): its sessions go, and with them, by the schema's cascades, the
 * chat, its runs, messages, steps, attempts, cleanup records, keys and stream tokens, webhook events
 * and deliveries, queued messages; then its runs' Redis leftovers (event streams, fences, jobs).
 * Null when there is no such chat in the account (accountId null: any account's, for operators).
 */
export async function eraseChat(
  deps: { db: Db; redis: RedisClient; runQueues: RunQueues; prefix: string },
  chatId: string,
  accountId: string | null,
  opts: { onlyIfIdleFor?: { defaultDays: number } } = {},
): Promise<{ runs: number } | null> {
  const runIds = await deps.db.$transaction(async (tx) => {
    const [chat] = await tx.$queryRaw<{ session_id: string }[]>`
      SELECT session_id::text FROM chats WHERE id = ${chatId}::uuid AND (${accountId}::uuid IS NULL OR account_id = ${accountId}::uuid) FOR UPDATE`;
    if (!chat) return null;
    // Retention's check again under the chat's lock (a message sent meanwhile holds it first): still idle that long?
    if (opts.onlyIfIdleFor && !(await idleLongEnough(tx, chatId, opts.onlyIfIdleFor.defaultDays))) return null;
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
    await deps.runQueues
      .forRun(runId)
      .remove(runId)
      .catch(() => {});
  }
  return { runs: runIds.length };
}

/** Whether a chat has no active run, no queued message, and no activity within its account's retention. */
async function idleLongEnough(tx: Pick<Db, '$queryRaw'>, chatId: string, defaultDays: number): Promise<boolean> {
  const [row] = await tx.$queryRaw<{ expired: boolean }[]>`
    SELECT (c.last_activity_at < now() - make_interval(days => COALESCE(a.retention_days, ${defaultDays}::int))
      AND NOT EXISTS (SELECT 1 FROM queued_messages q WHERE q.chat_id = c.id)
      AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.chat_id = c.id
        AND (r.status = ANY(${[...ACTIVE_STATUSES]}::run_status[]) OR r.finished_at >= now() - make_interval(days => COALESCE(a.retention_days, ${defaultDays}::int))))) AS expired
    FROM chats c JOIN accounts a ON a.id = c.account_id WHERE c.id = ${chatId}::uuid`;
  return row?.expired === true;
}
