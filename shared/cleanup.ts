import type { Db } from './db.js';
import type { Logger } from './logger.js';

export type CleanupReason = 'completed' | 'failed' | 'cancelled' | 'stalled';
export type CleanupOutcome = { performed: boolean; keysRevoked: number; sessionClosed: boolean };

const RETRIES = 3;

/**
 * The compensations for a run that reached a terminal state: revoke its ephemeral keys (scoped by
 * run, account and the ephemeral kind), close its session, and record that it happened. One SQL
 * statement, so it is all or nothing; the unique (run, episode) record makes it happen once per
 * terminal episode however many workers, sweeps or api calls race to do it.
 */
async function cleanupOnce(db: Db, run: { id: string; accountId: string; sessionId: string; episode: number }, reason: CleanupReason): Promise<CleanupOutcome> {
  const rows = await db.$queryRaw<{ keys_revoked: bigint; session_closed: boolean }[]>`
    WITH done AS (
      SELECT 1 FROM cleanup_records WHERE run_id = ${run.id}::uuid AND episode = ${run.episode}
    ), k AS (
      UPDATE api_keys SET revoked_at = now()
      WHERE run_id = ${run.id}::uuid AND account_id = ${run.accountId}::uuid AND kind = 'ephemeral' AND revoked_at IS NULL
        AND NOT EXISTS (SELECT 1 FROM done)
      RETURNING 1
    ), s AS (
      UPDATE sessions SET status = 'closed', closed_at = now()
      WHERE id = ${run.sessionId}::uuid AND account_id = ${run.accountId}::uuid AND status = 'open'
        AND NOT EXISTS (SELECT 1 FROM done)
      RETURNING 1
    )
    INSERT INTO cleanup_records (id, run_id, episode, reason, keys_revoked, session_closed, tries, completed_at)
    SELECT gen_random_uuid(), ${run.id}::uuid, ${run.episode}, ${reason}, (SELECT count(*) FROM k), EXISTS (SELECT 1 FROM s), 1, now()
    WHERE NOT EXISTS (SELECT 1 FROM done)
    ON CONFLICT (run_id, episode) DO NOTHING
    RETURNING keys_revoked, session_closed`;
  const row = rows[0];
  return row
    ? { performed: true, keysRevoked: Number(row.keys_revoked), sessionClosed: row.session_closed }
    : { performed: false, keysRevoked: 0, sessionClosed: false };
}

export type CleanupHooks = { onFailure?: () => void };

/**
 * Runs the cleanup, retrying a failure with backoff and logging each failure as an error. If it
 * still fails, it throws: the stale-run sweep finds terminal runs without a cleanup record and
 * tries again, so nothing is left behind even if this process dies now.
 */
export type CleanupTarget = { id: string; accountId: string; sessionId: string; episode: number };

/** `target` is the run, or its id when the caller has not loaded it. */
export async function cleanupRun(
  db: Db,
  logger: Logger,
  target: string | CleanupTarget,
  reason: CleanupReason,
  hooks: CleanupHooks = {},
): Promise<CleanupOutcome> {
  const run =
    typeof target === 'string'
      ? await db.run.findUnique({ where: { id: target }, select: { id: true, accountId: true, sessionId: true, episode: true } })
      : target;
  if (!run) return { performed: false, keysRevoked: 0, sessionClosed: false };
  const runId = run.id;
  for (let attempt = 1; ; attempt++) {
    try {
      const outcome = await cleanupOnce(db, run, reason);
      if (outcome.performed) logger.info('run cleaned up', { runId, reason, episode: run.episode, ...outcome });
      return outcome;
    } catch (err) {
      hooks.onFailure?.();
      logger.error('run cleanup failed', { runId, reason, try: attempt, error: (err as Error).message });
      if (attempt >= RETRIES) throw err;
      await new Promise((resolve) => setTimeout(resolve, 200 * 2 ** attempt));
    }
  }
}
