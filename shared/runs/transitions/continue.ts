import type { Db } from '../../infra/db.js';
import { sqlList, TRANSITIONS } from '../lifecycle.js';

/**
 * continue: the caller answered every call a parked run waits on; it is queued again (no worker
 * holds it until its job is taken). In the caller's transaction, which holds the run's row lock and
 * wrote the answers into the step; false when the run was no longer parked.
 */
export async function continueParkedRun(tx: Pick<Db, '$queryRawUnsafe'>, runId: string): Promise<boolean> {
  const rows = await tx.$queryRawUnsafe<{ id: string }[]>(
    `UPDATE runs SET status = '${TRANSITIONS.continue.to[0]}', heartbeat_at = now(), worker_id = NULL
     WHERE id = $1::uuid AND status IN (${sqlList(TRANSITIONS.continue.from)})
     RETURNING id::text`,
    runId,
  );
  return rows.length === 1;
}
