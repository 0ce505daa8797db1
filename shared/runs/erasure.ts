import { Prisma, type Db } from '../infra/db.js';
import type { RedisClient } from '../infra/redis.js';
import type { RunAdmission } from '../flow/runAdmission.js';
import { runEventKeys } from '../stream/events.js';
import type { BlobStore } from '../blobs/blobStore.js';

type ErasureDeps = { db: Db; redis: RedisClient; admission: RunAdmission; prefix: string; blobs: BlobStore };
type Tx = Pick<Db, '$queryRaw'>;

/** Redis commands in flight at once while a batch's leftovers are deleted. */
const REDIS_IN_FLIGHT = 64;

/**
 * Erases chats whole (SPEC section 17), all of a batch in one transaction: their sessions go, and
 * with them, by the schema's cascades, the chats, their runs, messages, steps, attempts, cleanup
 * records, keys and stream tokens, webhook events and deliveries, queued messages, compactions,
 * workspaces (and their stored content: in the same transaction in Postgres, right after it in an
 * external store), the files no other chat uses (and their bytes, likewise);
 * then the runs' Redis leftovers (event streams, fences, jobs). A crash leaves each chat whole or
 * gone. Only the chats of `accountId` (null: any account's, for operators and retention) that
 * `onlyIf` keeps — a condition checked under the chats' locks, so a message sent meanwhile wins —
 * are erased; a chat another transaction holds is skipped. Answers what was erased.
 */
export async function eraseChats(
  deps: ErasureDeps,
  chatIds: string[],
  accountId: string | null,
  opts: { onlyIf?: (tx: Tx, lockedIds: string[]) => Promise<string[]>; skipLocked?: boolean } = {},
): Promise<{ chats: string[]; runs: number }> {
  if (chatIds.length === 0) return { chats: [], runs: 0 };
  const erased = await deps.db.$transaction(async (tx) => {
    const locked = (
      await tx.$queryRaw<{ id: string }[]>`
        SELECT id::text FROM chats WHERE id = ANY(${chatIds}::uuid[]) AND (${accountId}::uuid IS NULL OR account_id = ${accountId}::uuid)
        ORDER BY id FOR UPDATE ${opts.skipLocked ? Prisma.sql`SKIP LOCKED` : Prisma.empty}`
    ).map((row) => row.id);
    const chats = opts.onlyIf && locked.length > 0 ? await opts.onlyIf(tx, locked) : locked;
    if (chats.length === 0) return { chats, runIds: [] as string[], blobPrefixes: [] as string[] };
    const runs = await tx.$queryRaw<{ id: string | null; blob_prefix: string | null }[]>`
      WITH doomed AS (
        SELECT session_id FROM chats WHERE id = ANY(${chats}::uuid[])
        UNION SELECT session_id FROM runs WHERE chat_id = ANY(${chats}::uuid[])
      ), runs_of AS (
        SELECT id FROM runs WHERE chat_id = ANY(${chats}::uuid[])
      ), gone AS (
        -- Runs whatever the query reads (a data-modifying WITH always runs to completion); runs_of saw the rows before it.
        DELETE FROM sessions WHERE id IN (SELECT session_id FROM doomed)
      ), content_gone AS (
        -- The sessions' workspaces go by the cascade; their content in the Postgres blob store (BLOB_STORE=postgres) with them.
        DELETE FROM blobs WHERE key LIKE ANY (SELECT 'workspaces/' || session_id::text || '/%' FROM doomed)
      ), files_gone AS (
        -- The chats' attachments (SPEC section 20), but for those another chat still uses, and their bytes.
        DELETE FROM files f WHERE f.id IN (SELECT file_id FROM chat_files WHERE chat_id = ANY(${chats}::uuid[]))
          AND NOT EXISTS (SELECT 1 FROM chat_files other WHERE other.file_id = f.id AND NOT other.chat_id = ANY(${chats}::uuid[]))
        RETURNING f.id
      ), file_content_gone AS (
        DELETE FROM blobs WHERE key LIKE ANY (SELECT 'files/' || id::text || '/%' FROM files_gone)
      )
      SELECT id::text, NULL AS blob_prefix FROM runs_of
      UNION ALL SELECT NULL, 'workspaces/' || session_id::text || '/' FROM doomed
      UNION ALL SELECT NULL, 'files/' || id::text || '/' FROM files_gone`;
    return {
      chats,
      runIds: runs.flatMap((run) => (run.id ? [run.id] : [])),
      blobPrefixes: runs.flatMap((run) => (run.blob_prefix ? [run.blob_prefix] : [])),
    };
  });
  // Content outside the database (BLOB_STORE=s3://…) goes after the rows that named it.
  if (deps.blobs.external) for (const prefix of erased.blobPrefixes) await deps.blobs.deletePrefix(prefix);
  for (let i = 0; i < erased.runIds.length; i += REDIS_IN_FLIGHT) {
    await Promise.all(
      erased.runIds.slice(i, i + REDIS_IN_FLIGHT).map(async (runId) => {
        const keys = runEventKeys(deps.prefix, runId);
        await deps.redis.del(keys.stream, keys.fence, keys.call);
        await deps.admission.withdraw(runId).catch(() => {});
      }),
    );
  }
  return { chats: erased.chats, runs: erased.runIds.length };
}

/** Erases one chat of the account (null: any account's); null when there is no such chat. */
export async function eraseChat(deps: ErasureDeps, chatId: string, accountId: string | null): Promise<{ runs: number } | null> {
  const erased = await eraseChats(deps, [chatId], accountId);
  return erased.chats.length === 1 ? { runs: erased.runs } : null;
}
