import type { Config } from '../../infra/config.js';
import type { Db } from '../../infra/db.js';
import { notFound } from '../../infra/errors.js';
import type { RunJobData } from '../runJob.js';
import { ACTIVE_STATUSES, isTerminalStatus, TRANSITIONS, TransitionRefused } from '../lifecycle.js';
import { mintRunKey } from '../runKey.js';

export type ReopenedRun = { runId: string; accountId: string; episode: number; attempt: number; jobData: RunJobData };

/**
 * Turns a terminal run back into a queued one for a new attempt: a new episode (so it gets its own
 * cleanup), its session reopened, a fresh ephemeral key. Earlier attempts and messages are kept.
 * Used by the admin replay, the CLI, and a worker that receives a job Bull Board retried.
 */
export async function reopenRunForReplay(
  db: Db,
  config: Config,
  runId: string,
  opts: { accountId?: string; onlyStatus?: 'failed' } = {},
): Promise<ReopenedRun> {
  return db.$transaction(async (tx) => {
    const rows = await tx.$queryRaw<{ account_id: string; session_id: string; episode: number; attempt: number }[]>`
      UPDATE runs SET status = ${TRANSITIONS.replay.to[0]}::run_status, episode = episode + 1, finished_at = NULL, error_code = NULL, error_message = NULL,
        error_retryable = NULL, cancel_requested_at = NULL, heartbeat_at = now(), worker_id = NULL
      WHERE id = ${runId}::uuid
        AND status = ANY(${[...TRANSITIONS.replay.from]}::run_status[])
        AND (${opts.onlyStatus ?? null}::run_status IS NULL OR status = ${opts.onlyStatus ?? null}::run_status)
        AND (${opts.accountId ?? null}::uuid IS NULL OR account_id = ${opts.accountId ?? null}::uuid)
        -- A chat has one active run at a time (SPEC section 12): not while another of its runs is active.
        AND NOT EXISTS (SELECT 1 FROM runs other WHERE other.chat_id = runs.chat_id AND other.id <> runs.id AND other.status = ANY(${[...ACTIVE_STATUSES]}::run_status[]))
      RETURNING account_id::text, session_id::text, episode, attempt`;
    const row = rows[0];
    if (!row) {
      const existing = await tx.run.findFirst({ where: { id: runId, ...(opts.accountId ? { accountId: opts.accountId } : {}) }, select: { status: true } });
      if (!existing) throw notFound('run_not_found', 'The run');
      throw new TransitionRefused(
        'replay',
        runId,
        existing.status,
        isTerminalStatus(existing.status)
          ? 'The run’s chat has another active run; a chat runs one at a time.'
          : `The run is ${existing.status}; only a completed, failed or cancelled run can be replayed.`,
      );
    }
    await tx.session.updateMany({ where: { id: row.session_id }, data: { status: 'open', closedAt: null } });
    return { runId, accountId: row.account_id, episode: row.episode, attempt: row.attempt, jobData: await mintRunKey(tx, config, row.account_id, runId) };
  });
}

/**
 * Replays a terminal run: reopens it and queues a job under the same jobId (the old job, finished,
 * is replaced). A fresh event stream starts for the new episode.
 */
