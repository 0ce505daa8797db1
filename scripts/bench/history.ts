import type { Db } from '../../shared/infra/db.js';

/**
 * Gives the bench's fresh database the history of a deployment that has been running for a while:
 * `runs` finished runs of the account over the last minutes, 100 a second (session closed, chat
 * with its two messages, one attempt, its ephemeral key revoked but not yet expired, the cleanup
 * record; with `steps`, a tool step), then ANALYZE, as autovacuum would have done by then. With
 * `agedDays`, that many days ago (the retention phase's history past retention), without the keys
 * (expired long since, the sweep deleted them then).
 *
 * Without it every phase runs against tables that start empty, which is nobody's steady state: the
 * statements' cached plans are made while `runs` holds a few hundred rows (a sequential scan is
 * the right plan then) and Postgres keeps such a plan until the next ANALYZE — which never comes
 * on a server with autovacuum off, as on this machine. The hot statements would then scan a table
 * that grows through the run. The same goes for every table the hot path touches: one left out of
 * the history (analyzed while nearly empty) gets plans for a nearly empty table.
 */
export async function seedHistory(db: Db, accountId: string, runs: number, opts: { agedDays?: number; steps?: boolean } = {}): Promise<void> {
  if (runs <= 0) return;
  const agedDays = opts.agedDays ?? 0;
  const steps = opts.steps ?? false;
  await db.$executeRaw`
    WITH history AS (
      SELECT gen_random_uuid() AS session_id, gen_random_uuid() AS chat_id, gen_random_uuid() AS run_id,
             now() - make_interval(days => ${agedDays}::int, secs => n / 100.0) AS at
      FROM generate_series(1, ${runs}::int) AS n
    ), sessions AS (
      INSERT INTO sessions (id, account_id, status, created_at) SELECT session_id, ${accountId}::uuid, 'closed', at FROM history
    ), chats AS (
      INSERT INTO chats (id, account_id, session_id, created_at, last_activity_at) SELECT chat_id, ${accountId}::uuid, session_id, at, at FROM history
    ), runs AS (
      INSERT INTO runs (id, account_id, session_id, chat_id, status, model, attempt, episode, created_at, started_at, finished_at, heartbeat_at)
      SELECT run_id, ${accountId}::uuid, session_id, chat_id, 'completed', 'local/echo', 1, 0, at, at, at, at FROM history
    ), messages AS (
      INSERT INTO messages (id, chat_id, run_id, role, parts, model, attempt, input_tokens, output_tokens, runtime_ms, created_at)
      SELECT gen_random_uuid()::text, chat_id, run_id, m.role::message_role, jsonb_build_array(jsonb_build_object('type', 'text', 'text', 'an earlier prompt')),
             CASE WHEN m.role = 'assistant' THEN 'local/echo' END, CASE WHEN m.role = 'assistant' THEN 1 END,
             CASE WHEN m.role = 'assistant' THEN 3 END, CASE WHEN m.role = 'assistant' THEN 3 END, CASE WHEN m.role = 'assistant' THEN 1 END, at
      FROM history, (VALUES ('user'), ('assistant')) AS m(role)
    ), keys AS (
      INSERT INTO api_keys (id, account_id, kind, hash, prefix, scopes, run_id, expires_at, revoked_at, created_at)
      SELECT gen_random_uuid(), ${accountId}::uuid, 'ephemeral', 'history-' || run_id, 'ry_ek_hist', '{runs:read}', run_id, at + interval '15 minutes', at, at
      FROM history WHERE ${agedDays}::int = 0
    ), steps AS (
      INSERT INTO run_steps (run_id, episode, step, attempt, text, tool_calls, results, created_at)
      SELECT run_id, 0, 0, 1, 'a step', '[{"toolCallId":"c1","toolName":"lookup","input":{"q":1}}]'::jsonb, '{"c1":{"output":{"ok":true}}}'::jsonb, at
      FROM history WHERE ${steps}::boolean
    ), attempts AS (
      INSERT INTO run_attempts (id, run_id, attempt, worker_id, status, started_at, finished_at)
      SELECT gen_random_uuid(), run_id, 1, 'bench-history', 'completed', at, at FROM history
    )
    INSERT INTO cleanup_records (id, run_id, episode, reason, keys_revoked, session_closed, created_at)
    SELECT gen_random_uuid(), run_id, 0, 'completed', 1, true, at FROM history`;
  await db.$executeRawUnsafe('ANALYZE');
}
