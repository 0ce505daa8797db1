import type { RedisClient } from '../infra/redis.js';
import type { RunAdmission } from '../flow/runAdmission.js';
import type { Config } from '../infra/config.js';
import type { Db } from '../infra/db.js';
import { deleteRunStream } from '../stream/events.js';
import { reopenRunForReplay, type ReopenedRun } from './transitions/replay.js';

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

/** The run was reopened for a replay but its job could not be queued (Redis): the sweep queues it. */
export class ReplayNotQueued extends Error {
  override name = 'ReplayNotQueued';
  constructor(runId: string, cause: unknown) {
    super(`run ${runId} was reopened but not queued`, { cause });
  }
}

export async function replayRun(
  deps: { db: Db; redis: RedisClient; admission: RunAdmission; config: Config },
  runId: string,
  opts: { accountId?: string; onlyStatus?: 'failed' } = {},
): Promise<ReopenedRun> {
  const reopened = await reopenRunForReplay(deps.db, deps.config, runId, opts);
  try {
    await deleteRunStream(deps.redis, deps.config.QUEUE_PREFIX, runId);
    await deps.admission.requeue(reopened.jobData);
  } catch (err) {
    throw new ReplayNotQueued(runId, err);
  }
  return reopened;
}
