import { statement } from '../../infra/sql.js';
import { chargeCte } from '../../accounts/usageLimits.js';
import { cleanupCtes } from '../compensations.js';
import { sqlList, TRANSITIONS } from '../lifecycle.js';

const [RETRIED, FAILED] = TRANSITIONS.failAttempt.to;

/**
 * failAttempt: the attempt failed; the run is queued again for a retry, or fails for good with its cleanup.
 * $6: the failure is final — the run becomes failed and is cleaned up; otherwise it goes back to queued.
 * $8 tokens, $9 micro-dollars: what the attempt's model calls used and no statement charged yet (a
 * call cut short by the failure or a shutdown), charged to the account in the same statement.
 */
export const FAIL_ATTEMPT = statement(
  'fail_attempt',
  `WITH r AS (
     UPDATE runs SET status = CASE WHEN $6::boolean THEN '${FAILED}' ELSE '${RETRIED}' END::run_status, finished_at = CASE WHEN $6::boolean THEN now() END,
       heartbeat_at = now(), error_code = $3, error_message = $4, error_retryable = $5::boolean
     WHERE id = $1::uuid AND attempt = $2::int AND status IN (${sqlList(TRANSITIONS.failAttempt.from)})
     RETURNING id, account_id, session_id, episode, status
   ), attempt AS (
     UPDATE run_attempts a SET status = $7::text::attempt_status, finished_at = now(), error_code = $3, error_message = $4 FROM r
     WHERE a.run_id = r.id AND a.attempt = $2::int
   ), ended AS (
     SELECT id, account_id, session_id, episode FROM r WHERE r.status = '${FAILED}'
   ), ${chargeCte('charged', 'SELECT r.account_id, $8::bigint AS tokens, $9::bigint AS spend_micros FROM r')},
   ${cleanupCtes('ended', "'failed'")}
   SELECT (SELECT count(*) FROM r)::int AS recorded`,
);
