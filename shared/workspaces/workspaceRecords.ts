import type { WorkspaceSpec } from './workspaceRequest.js';
import type { Db, SqlTx } from '../infra/db.js';
import { statement } from '../infra/sql.js';
import { setChatWorkspaceOn } from '../chats/chatStore.js';

/**
 * What a run or message's `workspace` does to its chat (SPEC section 18): a spec turns the chat's
 * workspace on and asks for the workspace of the chat's session, made by the next worker that runs
 * one of its runs (nothing happens if the session already has one: files and repo apply at creation
 * only); false turns it off for the chat's next runs (the workspace stays, for a later `true`).
 */
export async function setChatWorkspace(tx: SqlTx, accountId: string, chatId: string, spec: WorkspaceSpec | false): Promise<void> {
  await setChatWorkspaceOn(tx, chatId, accountId, spec !== false);
  if (spec === false) return;
  await tx.$executeRaw`
    INSERT INTO workspaces (session_id, account_id, spec)
    SELECT c.session_id, c.account_id, ${JSON.stringify(spec)}::jsonb FROM chats c WHERE c.id = ${chatId}::uuid AND c.account_id = ${accountId}::uuid
    ON CONFLICT (session_id) DO NOTHING`;
}

/**
 * Persists a workspace tool call: its result and the workspace version its changes made, in one
 * statement — both or neither (SPEC section 18: a later attempt finds every change of every call
 * whose result was persisted, none of one that was not). Fenced on the attempt like every worker
 * write, and on the version the call started from.
 */
export const RECORD_WORKSPACE_RESULT = statement(
  'record_workspace_result',
  `WITH w AS (
     UPDATE workspaces SET version = $8::int, blob_key = $9, size_bytes = $10::bigint, last_used_at = now()
     WHERE session_id = $7::uuid AND version = $11::int
       AND EXISTS (SELECT 1 FROM runs r WHERE r.id = $1::uuid AND r.attempt = $2::int AND r.status = 'running')
     RETURNING version
   )
   UPDATE run_steps s SET results = s.results || jsonb_build_object($4::text, $5::jsonb), result_timings = s.result_timings || jsonb_build_object($4::text, $6::jsonb)
   FROM runs r
   WHERE r.id = $1::uuid AND r.attempt = $2::int AND r.status = 'running' AND s.run_id = r.id AND s.episode = r.episode AND s.step = $3::int
     AND EXISTS (SELECT 1 FROM w)
   RETURNING s.step`,
);

type Writer = Pick<Db, '$executeRaw'>;

/** A workspace made (its first version stored): ready for its runs. False when its record was removed meanwhile. */
export async function markWorkspaceMade(db: Writer, made: { sessionId: string; accountId: string; blobKey: string; sizeBytes: number }): Promise<boolean> {
  const updated = await db.$executeRaw`
    UPDATE workspaces SET status = 'ready', version = 1, blob_key = ${made.blobKey}, size_bytes = ${made.sizeBytes}, last_used_at = now()
    WHERE session_id = ${made.sessionId}::uuid AND account_id = ${made.accountId}::uuid AND status = 'pending'`;
  return updated === 1;
}

/** A workspace that could not be made leaves no record (its stored content is dropped by its maker). */
export async function dropPendingWorkspace(db: Writer, sessionId: string): Promise<void> {
  await db.$executeRaw`DELETE FROM workspaces WHERE session_id = ${sessionId}::uuid AND status = 'pending'`;
}

/** A new version of the workspace written from outside a run (an upload while idle). */
export async function recordWorkspaceVersion(tx: Writer, version: { sessionId: string; version: number; blobKey: string; sizeBytes: number }): Promise<void> {
  await tx.$executeRaw`
    UPDATE workspaces SET version = ${version.version}, blob_key = ${version.blobKey}, size_bytes = ${version.sizeBytes}, last_used_at = now()
    WHERE session_id = ${version.sessionId}::uuid`;
}
