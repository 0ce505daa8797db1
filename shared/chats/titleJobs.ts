import { chargeCte } from '../accounts/usageLimits.js';
import type { SqlTx } from '../infra/db.js';
import { statement } from '../infra/sql.js';

/**
 * The chat_title_jobs table's one home, and the statements that set a generated title (SPEC
 * section 19): a job is written by the run's finish (shared/runs/transitions/finish.ts, for a
 * chat's first answer) or by a request for a new title; worker/outbox/titleDispatcher.ts takes jobs,
 * calls the model and ends each with one of these statements.
 */
export const MAX_TRIES = 3;
/** A taken job is leased for this long: a worker that dies with it leaves it to another after that. */
const LEASE_SECONDS = 60;

export const TAKE_JOBS = statement(
  'take_title_jobs',
  `WITH due AS (
     SELECT chat_id FROM chat_title_jobs WHERE next_attempt_at <= now() ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED
   )
   UPDATE chat_title_jobs j SET attempts = j.attempts + 1, next_attempt_at = now() + make_interval(secs => ${LEASE_SECONDS})
   FROM due WHERE j.chat_id = due.chat_id
   RETURNING j.chat_id::text, j.attempts, j.replace`,
);

/** CHAT_TITLES=false: the jobs the trigger still writes are dropped, no model called. */
export const DROP_JOBS = statement(
  'drop_title_jobs',
  `DELETE FROM chat_title_jobs WHERE chat_id IN (SELECT chat_id FROM chat_title_jobs ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED) RETURNING chat_id`,
);

/** The chat's account, its model (its settings', else its first run's) and its first exchange still in its history. */
export const FIRST_EXCHANGE = statement(
  'chat_first_exchange',
  `SELECT c.account_id::text, COALESCE(c.settings->>'model', (SELECT r.model FROM runs r WHERE r.chat_id = c.id ORDER BY r.created_at LIMIT 1)) AS model,
     (SELECT m.parts FROM messages m WHERE m.chat_id = c.id AND m.role = 'user' AND m.discarded_at IS NULL ORDER BY m.seq LIMIT 1) AS question,
     (SELECT m.parts FROM messages m WHERE m.chat_id = c.id AND m.role = 'assistant' AND m.discarded_at IS NULL ORDER BY m.seq LIMIT 1) AS answer
   FROM chats c WHERE c.id = $1::uuid`,
);

/** The call recorded for the usage reports (source `title`), when it used anything: $1 chat, $3 account, $5 cost, $6 model, $7 usage. */
const RECORD_CALL = `recorded AS (
     INSERT INTO title_calls (chat_id, account_id, model, usage, cost_micros)
     SELECT $1::uuid, $3::uuid, $6, $7::jsonb, $5::bigint WHERE $4::bigint > 0
   )`;

/** Sets the title (unless a person set one meanwhile), charges and records the call, and closes the job: one statement. */
export const SET_TITLE = statement(
  'set_chat_title',
  `WITH job AS (
     DELETE FROM chat_title_jobs WHERE chat_id = $1::uuid RETURNING chat_id, replace
   ), titled AS (
     UPDATE chats c SET title = $2 FROM job WHERE c.id = job.chat_id AND NOT c.title_manual AND (job.replace OR c.title IS NULL) RETURNING c.id
   ), ${chargeCte('charged', 'SELECT $3::uuid AS account_id, $4::bigint AS tokens, $5::bigint AS spend_micros')}, ${RECORD_CALL}
   SELECT (SELECT count(*) FROM titled)::int AS titled`,
);

/** A failed try: again later, or (its last) the job is dropped; what the call used is charged and recorded either way. */
export const FAIL_JOB = statement(
  'fail_title_job',
  `WITH job AS (
     UPDATE chat_title_jobs SET next_attempt_at = now() + make_interval(secs => $2::int) WHERE chat_id = $1::uuid AND attempts < ${MAX_TRIES} RETURNING chat_id
   ), dropped AS (
     DELETE FROM chat_title_jobs WHERE chat_id = $1::uuid AND attempts >= ${MAX_TRIES}
   ), ${chargeCte('charged', 'SELECT $3::uuid AS account_id, $4::bigint AS tokens, $5::bigint AS spend_micros')}, ${RECORD_CALL}
   SELECT 1`,
);

/** A new title for the chat now, replacing the current one (a worker takes the job at once). */
export async function requestNewTitle(tx: SqlTx, chatId: string): Promise<void> {
  await tx.$executeRaw`
    INSERT INTO chat_title_jobs (chat_id, replace) VALUES (${chatId}::uuid, true)
    ON CONFLICT (chat_id) DO UPDATE SET replace = true, attempts = 0, next_attempt_at = now()`;
}
