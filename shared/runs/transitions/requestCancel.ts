import { statement, type Sql } from '../../infra/sql.js';
import { sqlList, TRANSITIONS } from '../lifecycle.js';

// The status stays (to = from): the request is a flag the run's worker acts on (its heartbeat or the
// cancel channel), or whoever meets the run next if its worker never does (worker/fleet/requestedCancels.ts).
const REQUEST_CANCEL = statement(
  'request_cancel',
  `UPDATE runs SET cancel_requested_at = COALESCE(cancel_requested_at, now())
   WHERE id = $1::uuid AND status IN (${sqlList(TRANSITIONS.requestCancel.from)}) AND status IN (${sqlList(TRANSITIONS.requestCancel.to)})
   RETURNING id::text`,
);

/** requestCancel: a running run is asked to stop; false when it was not running. */
export async function requestCancel(sql: Sql, runId: string): Promise<boolean> {
  return (await sql.rows(REQUEST_CANCEL, [runId])).length === 1;
}
