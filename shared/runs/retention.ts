import { createBlobStore } from '../blobs/createBlobStore.js';
import { expireOrphanFiles } from '../files/fileStore.js';
import type { Config } from '../infra/config.js';
import { Prisma, type Db } from '../infra/db.js';
import type { RedisClient } from '../infra/redis.js';
import type { Metrics } from '../infra/metrics.js';
import type { RunAdmission } from '../flow/runAdmission.js';
import { eraseChats } from './erasure.js';
import { hasQueuedMessages } from '../chats/queuedMessages.js';
import { ACTIVE_STATUSES } from './lifecycle.js';

// Chats erased in one transaction: small enough that a steady POST rate does not notice (the bench measures it).
const BATCH = 100;

/**
 * A chat `c` (its account `a`) past retention: no queued message, no active run, and no activity —
 * its last message sent, or a run's end — within its account's retention days (`defaultDays` unless
 * the account says otherwise).
 */
const expiredChat = (defaultDays: number | undefined) => {
  const cutoff = Prisma.sql`now() - make_interval(days => COALESCE(a.retention_days, ${defaultDays ?? null}::int))`;
  return Prisma.sql`c.last_activity_at < ${cutoff}
    AND NOT ${hasQueuedMessages(Prisma.sql`c.id`)}
    AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.chat_id = c.id AND (r.status = ANY(${[...ACTIVE_STATUSES]}::run_status[]) OR r.finished_at >= ${cutoff}))`;
};

export type RetentionReport = { chatsDeleted: number; runsDeleted: number; filesDeleted: number; vacuumMs?: number };

/**
 * What a chat's erasure deletes from (by the schema's cascades), and the sweep's deletions (expired
 * keys, delivered webhook events).
 */
export const HISTORY_TABLES = [
  'sessions',
  'chats',
  'runs',
  'messages',
  'run_attempts',
  'run_steps',
  'cleanup_records',
  'open_runs',
  'api_keys',
  'webhook_events',
  'webhook_deliveries',
  'queued_messages',
  'chat_compactions',
  'title_calls',
  'workspaces',
  'files',
  'chat_files',
  'blobs',
] as const;

/**
 * Storage that comes back: a plain VACUUM of the history tables after a pass that deleted rows, so
 * the space of what was erased is reused by the rows written next — the tables stay the size of the
 * history they keep instead of growing with everything ever written. Postgres' autovacuum would do
 * it too, eventually, where it is on; runyard does not count on it (it is off on many a database
 * tuned for bulk loads, and on the machines runyard is tested on). Plain VACUUM takes no lock that
 * writers wait for.
 */
export async function reclaimStorage(db: Db): Promise<number> {
  const started = performance.now();
  for (const table of HISTORY_TABLES) await db.$executeRawUnsafe(`VACUUM (ANALYZE) "${table}"`);
  return Math.round(performance.now() - started);
}

/**
 * One retention pass (SPEC section 17): every chat with no active run and no queued message whose
 * last activity (its last message sent, or its last run's end) is older than its account's
 * retention (RETENTION_DAYS unless the account says otherwise) is erased whole (shared/runs/erasure.ts),
 * BATCH chats to a transaction, oldest first, until none is left; uploads attached to no chat a day
 * after they arrived go too (SPEC section 20); then the space is reclaimed (RETENTION_VACUUM).
 * `now`: the clock (a test moves it).
 */
export async function pruneExpiredChats(deps: {
  db: Db;
  redis: RedisClient;
  admission: RunAdmission;
  config: Config;
  metrics?: Pick<Metrics, 'retentionErased'>;
  now?: Date;
}): Promise<RetentionReport> {
  const report: RetentionReport = { chatsDeleted: 0, runsDeleted: 0, filesDeleted: 0 };
  const blobs = createBlobStore(deps.config, deps.db);
  const expired = expiredChat(deps.config.RETENTION_DAYS);
  for (;;) {
    const candidates = await deps.db.$queryRaw<{ id: string }[]>`
      SELECT c.id::text FROM chats c JOIN accounts a ON a.id = c.account_id
      WHERE ${expired}
      ORDER BY c.last_activity_at
      LIMIT ${BATCH}`;
    // Checked again in the erasure's transaction, under the chats' locks: a message sent meanwhile wins.
    const stillExpired = async (tx: Pick<Db, '$queryRaw'>, locked: string[]) =>
      (
        await tx.$queryRaw<{ id: string }[]>`
          SELECT c.id::text FROM chats c JOIN accounts a ON a.id = c.account_id WHERE c.id = ANY(${locked}::uuid[]) AND ${expired}`
      ).map((row) => row.id);
    const erased = await eraseChats(
      { ...deps, prefix: deps.config.QUEUE_PREFIX, blobs },
      candidates.map((chat) => chat.id),
      null,
      { onlyIf: stillExpired, skipLocked: true },
    );
    report.chatsDeleted += erased.chats.length;
    report.runsDeleted += erased.runs;
    deps.metrics?.retentionErased.inc({ what: 'chats' }, erased.chats.length);
    deps.metrics?.retentionErased.inc({ what: 'runs' }, erased.runs);
    if (candidates.length < BATCH) break;
  }
  report.filesDeleted = await expireOrphanFiles({ db: deps.db, blobs }, deps.now);
  deps.metrics?.retentionErased.inc({ what: 'files' }, report.filesDeleted);
  if (report.chatsDeleted > 0 && deps.config.RETENTION_VACUUM) report.vacuumMs = await reclaimStorage(deps.db);
  return report;
}
