import type { Config } from '../infra/config.js';
import { Prisma, type Db } from '../infra/db.js';
import type { RedisClient } from '../infra/redis.js';
import type { RunAdmission } from '../flow/runAdmission.js';
import { eraseChat } from './erasure.js';
import { ACTIVE_STATUSES } from './lifecycle.js';

const BATCH = 100;

/**
 * A chat `c` (its account `a`) past retention: no queued message, no active run, and no activity —
 * its last message sent, or a run's end — within its account's retention days (`defaultDays` unless
 * the account says otherwise).
 */
const expiredChat = (defaultDays: number) => {
  const cutoff = Prisma.sql`now() - make_interval(days => COALESCE(a.retention_days, ${defaultDays}::int))`;
  return Prisma.sql`c.last_activity_at < ${cutoff}
    AND NOT EXISTS (SELECT 1 FROM queued_messages q WHERE q.chat_id = c.id)
    AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.chat_id = c.id AND (r.status = ANY(${[...ACTIVE_STATUSES]}::run_status[]) OR r.finished_at >= ${cutoff}))`;
};

export type RetentionReport = { chatsDeleted: number; runsDeleted: number };

/**
 * One retention pass (SPEC section 17): every chat with no active run and no queued message whose
 * last activity (its last message sent, or its last run's end) is older than its account's
 * retention (RETENTION_DAYS unless the account says otherwise) is erased whole, a chat at a time
 * (shared/runs/erasure.ts), in batches of BATCH, oldest first, until none is left.
 */
export async function pruneExpiredChats(deps: { db: Db; redis: RedisClient; admission: RunAdmission; config: Config }): Promise<RetentionReport> {
  const report: RetentionReport = { chatsDeleted: 0, runsDeleted: 0 };
  for (;;) {
    const expired = await deps.db.$queryRaw<{ id: string }[]>`
      SELECT c.id::text FROM chats c JOIN accounts a ON a.id = c.account_id
      WHERE ${expiredChat(deps.config.RETENTION_DAYS)}
      ORDER BY c.last_activity_at
      LIMIT ${BATCH}`;
    for (const chat of expired) {
      // Checked again in the erasure's transaction, under the chat's lock: a message sent meanwhile wins.
      const stillExpired = async (tx: Pick<Db, '$queryRaw'>) =>
        (
          await tx.$queryRaw<{ id: string }[]>`
          SELECT c.id::text FROM chats c JOIN accounts a ON a.id = c.account_id WHERE c.id = ${chat.id}::uuid AND ${expiredChat(deps.config.RETENTION_DAYS)}`
        ).length === 1;
      const erased = await eraseChat({ ...deps, prefix: deps.config.QUEUE_PREFIX }, chat.id, null, { onlyIf: stillExpired });
      if (!erased) continue;
      report.chatsDeleted++;
      report.runsDeleted += erased.runs;
    }
    if (expired.length < BATCH) return report;
  }
}
