import type { RedisClient } from './redis.js';
import type { RunQueues } from './runQueues.js';
import type { Config } from './config.js';
import type { Db } from './db.js';
import { mintEphemeralKeyData } from './apiKeys.js';
import { notFound } from './errors.js';
import { deleteRunStream } from './events.js';
import { RUN_JOB_NAME, runJobOptions, type RunJobData } from './queue.js';
import { sealSecret } from './secrets.js';

import { TRANSITIONS, TransitionRefused } from './runLifecycle.js';

export type FailedRunFilter = { since?: Date; until?: Date; model?: string; accountId?: string; limit: number };

/**
 * The failed runs matching the filters, oldest failure first: what an operator replays in bulk. Read
 * through the cleanup records (one per ended episode, indexed by reason and time; a failure's record
 * is written with it, or by the sweep soon after), because runs has no index on status.
 */
export async function findFailedRuns(db: Db, filter: FailedRunFilter): Promise<{ id: string; model: string }[]> {
  const since = filter.since ?? null;
  const until = filter.until ?? null;
  return db.$queryRaw<{ id: string; model: string }[]>`
    SELECT r.id::text, r.model FROM cleanup_records c JOIN runs r ON r.id = c.run_id AND r.episode = c.episode
    WHERE c.reason IN ('failed', 'stalled') AND r.status = 'failed'
      AND (${since}::timestamptz IS NULL OR (c.created_at >= ${since}::timestamptz AND r.finished_at >= ${since}::timestamptz))
      AND (${until}::timestamptz IS NULL OR r.finished_at <= ${until}::timestamptz)
      AND (${filter.model ?? null}::text IS NULL OR r.model = ${filter.model ?? null}::text)
      AND (${filter.accountId ?? null}::uuid IS NULL OR r.account_id = ${filter.accountId ?? null}::uuid)
    ORDER BY r.finished_at, r.id
    LIMIT ${filter.limit}`;
}

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
      UPDATE runs SET status = 'queued', episode = episode + 1, finished_at = NULL, error_code = NULL, error_message = NULL,
        error_retryable = NULL, cancel_requested_at = NULL, heartbeat_at = now(), worker_id = NULL
      WHERE id = ${runId}::uuid
        AND status = ANY(${[...TRANSITIONS.replay.from]}::run_status[])
        AND (${opts.onlyStatus ?? null}::run_status IS NULL OR status = ${opts.onlyStatus ?? null}::run_status)
        AND (${opts.accountId ?? null}::uuid IS NULL OR account_id = ${opts.accountId ?? null}::uuid)
      RETURNING account_id::text, session_id::text, episode, attempt`;
    const row = rows[0];
    if (!row) {
      const existing = await tx.run.findFirst({ where: { id: runId, ...(opts.accountId ? { accountId: opts.accountId } : {}) }, select: { status: true } });
      if (!existing) throw notFound('run_not_found', 'The run');
      throw new TransitionRefused(
        'replay',
        runId,
        existing.status,
        `The run is ${existing.status}; only a completed, failed or cancelled run can be replayed.`,
      );
    }
    await tx.session.updateMany({ where: { id: row.session_id }, data: { status: 'open', closedAt: null } });
    const key = mintEphemeralKeyData(row.account_id, runId, config.EPHEMERAL_KEY_TTL_MS);
    const created = await tx.apiKey.create({ data: key.row, select: { id: true } });
    return {
      runId,
      accountId: row.account_id,
      episode: row.episode,
      attempt: row.attempt,
      jobData: { runId, accountId: row.account_id, keyId: created.id, ephemeralKey: sealSecret(key.rawKey, config.RUNYARD_SECRET) },
    };
  });
}

/**
 * Replays a terminal run: reopens it and queues a job under the same jobId (the old job, finished,
 * is replaced). A fresh event stream starts for the new episode.
 */
/** The run was reopened for a replay but its job could not be queued (Redis): the sweep queues it. */
export class ReplayNotQueued extends Error {
  override name = 'ReplayNotQueued';
  constructor(runId: string, cause: unknown) {
    super(`run ${runId} was reopened but not queued`, { cause });
  }
}

export async function replayRun(
  deps: { db: Db; redis: RedisClient; runQueues: RunQueues; config: Config },
  runId: string,
  opts: { accountId?: string; onlyStatus?: 'failed' } = {},
): Promise<ReopenedRun> {
  const reopened = await reopenRunForReplay(deps.db, deps.config, runId, opts);
  try {
    const queue = deps.runQueues.forRun(runId);
    const existing = await queue.getJob(runId);
    if (existing) await existing.remove();
    await deleteRunStream(deps.redis, deps.config.QUEUE_PREFIX, runId);
    await queue.add(RUN_JOB_NAME, reopened.jobData, runJobOptions(deps.config, runId));
  } catch (err) {
    throw new ReplayNotQueued(runId, err);
  }
  return reopened;
}

/**
 * Re-queues a queued or running run whose job vanished (Redis lost its data, or a job was removed by
 * hand). The raw ephemeral key is stored nowhere, so the run gets a fresh one and the old is revoked.
 * Fenced on the attempt the sweep saw, so a run that came back to life meanwhile is left alone.
 */
export async function requeueLostRun(deps: { db: Db; runQueues: RunQueues; config: Config }, runId: string, seenAttempt: number): Promise<boolean> {
  const jobData = await deps.db.$transaction(async (tx) => {
    const rows = await tx.$queryRaw<{ account_id: string }[]>`
      UPDATE runs SET status = 'queued', heartbeat_at = now(), worker_id = NULL
      WHERE id = ${runId}::uuid AND attempt = ${seenAttempt} AND status = ANY(${[...TRANSITIONS.requeueLost.from]}::run_status[]) AND cancel_requested_at IS NULL
      RETURNING account_id::text`;
    const row = rows[0];
    if (!row) return null;
    await tx.apiKey.updateMany({ where: { runId, accountId: row.account_id, kind: 'ephemeral', revokedAt: null }, data: { revokedAt: new Date() } });
    const key = mintEphemeralKeyData(row.account_id, runId, deps.config.EPHEMERAL_KEY_TTL_MS);
    const created = await tx.apiKey.create({ data: key.row, select: { id: true } });
    return { runId, accountId: row.account_id, keyId: created.id, ephemeralKey: sealSecret(key.rawKey, deps.config.RUNYARD_SECRET) } satisfies RunJobData;
  });
  if (!jobData) return false;
  await deps.runQueues.forRun(runId).add(RUN_JOB_NAME, jobData, runJobOptions(deps.config, runId));
  return true;
}
