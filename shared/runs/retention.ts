import type { Config } from '../infra/config.js';
import type { Db } from '../infra/db.js';
import type { RedisClient } from '../infra/redis.js';
import type { RunQueues } from '../infra/runQueues.js';
import { eraseChat } from './erasure.js';
import { ACTIVE_STATUSES } from './lifecycle.js';

const BATCH = 100;

export type RetentionReport = { chatsDeleted: number; runsDeleted: number };

/**
 * One retention pass (SPEC section 17): every chat with no active run and no queued message whose
 * last activity (its last message sent, or its last run's end) is older than its account's
 * retention (RETENTION_DAYS unless the account says otherwise) is erased whole, a chat at a time
 * (shared/runs/erasure.ts), in batches of BATCH, oldest first, until none is left.
 */
export async function pruneExpiredChats(deps: { db: Db; redis: RedisClient; runQueues: RunQueues; config: Config }): Promise<RetentionReport> {
  const report: RetentionReport = { chatsDeleted: 0, runsDeleted: 0 };
  for (;;) {
    const expired = await deps.db.$queryRaw<{ id: string }[]>`
      SELECT c.id::text FROM chats c JOIN accounts a ON a.id = c.account_id
      WHERE c.last_activity_at < now() - make_interval(days => COALESCE(a.retention_days, ${deps.config.RETENTION_DAYS}::int))
        AND NOT EXISTS (SELECT 1 FROM queued_messages q WHERE q.chat_id = c.id)
        AND NOT EXISTS (
          SELECT 1 FROM runs r WHERE r.chat_id = c.id
            AND (r.status = ANY(${[...ACTIVE_STATUSES]}::run_status[])
              OR r.finished_at >= now() - make_interval(days => COALESCE(a.retention_days, ${deps.config.RETENTION_DAYS}::int))))
      ORDER BY c.last_activity_at
      LIMIT ${BATCH}`;
    for (const chat of expired) {
      const erased = await eraseChat({ ...deps, prefix: deps.config.QUEUE_PREFIX }, chat.id, null, {
        onlyIfIdleFor: { defaultDays: deps.config.RETENTION_DAYS },
      });
      if (!erased) continue;
      report.chatsDeleted++;
      report.runsDeleted += erased.runs;
    }
    if (expired.length < BATCH) return report;
  }
}
