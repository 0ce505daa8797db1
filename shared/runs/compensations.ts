import type { Logger } from '../infra/logger.js';
import { sqlList, TERMINAL_STATUSES } from './lifecycle.js';
import { statement, type Sql } from '../infra/sql.js';

export type CleanupReason = 'completed' | 'failed' | 'cancelled' | 'stalled' | 'action_timeout';
export type CleanupOutcome = { performed: boolean; keysRevoked: number; sessionClosed: boolean };

const RETRIES = 3;

/**
 * The compensations for runs that reached a terminal state, as SQL to put in a statement's WITH
 * clause: revoke each run's ephemeral keys (scoped by run, account and the ephemeral kind), close
 * its session, and record that it happened. `target` names an earlier CTE with the runs' id,
 * account_id, session_id and episode (no rows: nothing to clean up); `reason` is an SQL expression
 * for the reason (it may use the target's columns as `t.`). The unique (run, episode) record makes
 * it happen once per terminal episode however many workers, sweeps or api calls race to do it; the
 * run leaves open_runs (the sweep's work list) either way. The CTE `cleanup` has a row (run_id,
 * keys_revoked, session_closed) for each run it cleaned up.
 */
export const cleanupCtes = (target: string, reason: string) => `
  already_done AS (
    SELECT c.run_id FROM cleanup_records c JOIN ${target} t ON c.run_id = t.id AND c.episode = t.episode
  ), revoked AS (
    UPDATE api_keys k SET revoked_at = now() FROM ${target} t
    WHERE k.run_id = t.id AND k.account_id = t.account_id AND k.kind = 'ephemeral' AND k.revoked_at IS NULL
      AND t.id NOT IN (SELECT run_id FROM already_done)
    RETURNING k.run_id
  ), closed AS (
    UPDATE sessions s SET status = 'closed', closed_at = now() FROM ${target} t
    WHERE s.id = t.session_id AND s.account_id = t.account_id AND s.status = 'open' AND t.id NOT IN (SELECT run_id FROM already_done)
    RETURNING s.id
  ), cleanup AS (
    INSERT INTO cleanup_records (id, run_id, episode, reason, keys_revoked, session_closed, tries, completed_at)
    SELECT gen_random_uuid(), t.id, t.episode, (${reason})::text, (SELECT count(*) FROM revoked v WHERE v.run_id = t.id),
      EXISTS (SELECT 1 FROM closed s WHERE s.id = t.session_id), 1, now()
    FROM ${target} t
    WHERE t.id NOT IN (SELECT run_id FROM already_done)
    ON CONFLICT (run_id, episode) DO NOTHING
    RETURNING run_id, keys_revoked, session_closed
  ), closed_runs AS (
    DELETE FROM open_runs o USING ${target} t WHERE o.run_id = t.id
  )`;

const CLEANUP_RUN = statement(
  'cleanup_run',
  `WITH target AS (
     -- Only while terminal: a run a replay has just reopened belongs to its new episode.
     SELECT id, account_id, session_id, episode FROM runs WHERE id = $1::uuid AND status IN (${sqlList(TERMINAL_STATUSES)})
   ), ${cleanupCtes('target', '$2')}
   SELECT keys_revoked::int, session_closed FROM cleanup`,
);

export type CleanupHooks = { onFailure?: () => void };

/**
 * Cleans up after a terminal run that is still open (every path that ends a run cleans up in the
 * same statement; the sweep calls this for runs ended by an older release, which did it apart).
 * Retries a failure with backoff, logging each failure as an error; if it still fails, it throws
 * and the next sweep tries again.
 */
export async function cleanupRun(sql: Sql, logger: Logger, runId: string, reason: CleanupReason, hooks: CleanupHooks = {}): Promise<CleanupOutcome> {
  for (let attempt = 1; ; attempt++) {
    try {
      const [row] = await sql.rows<{ keys_revoked: number; session_closed: boolean }>(CLEANUP_RUN, [runId, reason]);
      const outcome = row
        ? { performed: true, keysRevoked: row.keys_revoked, sessionClosed: row.session_closed }
        : { performed: false, keysRevoked: 0, sessionClosed: false };
      if (outcome.performed) logger.info('run cleaned up', { runId, reason, ...outcome });
      return outcome;
    } catch (err) {
      hooks.onFailure?.();
      logger.error('run cleanup failed', { runId, reason, try: attempt, error: (err as Error).message });
      if (attempt >= RETRIES) throw err;
      await new Promise((resolve) => setTimeout(resolve, 200 * 2 ** attempt));
    }
  }
}
