import type { Config } from '../infra/config.js';
import type { Db } from '../infra/db.js';
import { statement, type Sql } from '../infra/sql.js';
import type { RunJobData } from './runJob.js';
import { PROMOTION } from './lifecycle.js';
import { mintRunKey } from './runKey.js';

// Whether any run waits for its job: one read of a table that is empty almost always, so an
// idle worker's poll is one round trip rather than a transaction of three through Prisma.
const ANY_PROMOTED_RUN = statement('any_promoted_run', 'SELECT EXISTS (SELECT 1 FROM pending_run_jobs) AS any');

export async function anyPromotedRun(sql: Sql): Promise<boolean> {
  const [row] = await sql.rows<{ any: boolean }>(ANY_PROMOTED_RUN, []);
  return row?.any === true;
}

/**
 * Takes up to `limit` runs that queued messages became (pending_run_jobs, written by the promotion
 * trigger in the transaction that ended the chat's previous run): each gets its run key, and leaves
 * the outbox, in one transaction — rows another process holds are skipped. The caller queues their
 * jobs; one it fails to queue is a queued run without a job, which the sweep re-queues.
 */
export async function takePromotedRuns(db: Db, config: Config, limit: number): Promise<RunJobData[]> {
  return db.$transaction(async (tx) => {
    const rows = await tx.$queryRaw<{ run_id: string; account_id: string; status: string }[]>`
      SELECT p.run_id::text, r.account_id::text, r.status::text FROM pending_run_jobs p JOIN runs r ON r.id = p.run_id
      ORDER BY p.created_at LIMIT ${limit} FOR UPDATE OF p SKIP LOCKED`;
    if (rows.length === 0) return [];
    await tx.$executeRaw`DELETE FROM pending_run_jobs WHERE run_id = ANY(${rows.map((row) => row.run_id)}::uuid[])`;
    // A run cancelled (or its chat archived) before a worker got here needs no job.
    const startable = rows.filter((row) => row.status === PROMOTION.starts);
    return Promise.all(startable.map((row) => mintRunKey(tx, config, row.account_id, row.run_id)));
  });
}
