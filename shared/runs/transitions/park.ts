import { statement } from '../../infra/sql.js';
import { sqlList, TRANSITIONS } from '../lifecycle.js';

/**
 * park: the step waits for the caller's tool results or approvals.
 * The attempt ends by parking the run for the caller: requires_action, no worker, its run key revoked
 * (a continuation mints a fresh one). Fenced like every worker write.
 */
export const PARK_RUN = statement(
  'park_run',
  `WITH r AS (
     UPDATE runs SET status = '${TRANSITIONS.park.to[0]}', heartbeat_at = now(), worker_id = NULL, steps = $3::int, usage = $4::jsonb, cost_micros = $5::bigint
     WHERE id = $1::uuid AND attempt = $2::int AND status IN (${sqlList(TRANSITIONS.park.from)})
     RETURNING id, account_id
   ), attempt AS (
     UPDATE run_attempts a SET status = 'requires_action', finished_at = now() FROM r WHERE a.run_id = r.id AND a.attempt = $2::int
   ), revoked AS (
     UPDATE api_keys k SET revoked_at = now() FROM r
     WHERE k.run_id = r.id AND k.account_id = r.account_id AND k.kind = 'ephemeral' AND k.revoked_at IS NULL
   )
   SELECT count(*)::int AS parked FROM r`,
);
