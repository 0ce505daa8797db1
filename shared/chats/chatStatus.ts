import { Prisma, type Db } from '../infra/db.js';
import { activeRunIdOf } from '../runs/activeRun.js';

/** A chat's status (SPEC section 19): busy with an active run; error when idle and its last run failed; else idle. */
export type ChatStatus = 'idle' | 'busy' | 'error';
export type ChatLastError = { code: string; message: string; runId: string; at: string };

/** A chat's last run (an edit's discarded ones aside), over a chat `c`: what its status and lastError come from. */
export const LAST_RUN_OF_CHAT = Prisma.sql`(SELECT json_build_object('id', lr.id, 'status', lr.status, 'error_code', lr.error_code, 'error_message', lr.error_message, 'finished_at', lr.finished_at)
  FROM runs lr WHERE lr.chat_id = c.id AND NOT lr.discarded ORDER BY lr.created_at DESC, lr.seq DESC LIMIT 1)`;

/** The status as SQL over a chat `c` (for ?status=). */
export const STATUS_OF_CHAT = Prisma.sql`CASE WHEN ${activeRunIdOf(Prisma.sql`c.id`)} IS NOT NULL THEN 'busy'
  WHEN (${LAST_RUN_OF_CHAT})->>'status' = 'failed' THEN 'error' ELSE 'idle' END`;

export type LastRun = { id: string; status: string; error_code: string | null; error_message: string | null; finished_at: string | null } | null;

/** The status and lastError of a chat from its active run and its last run. */
export function chatStatusOf(
  activeRunId: string | null,
  lastRun: LastRun,
): { status: ChatStatus; activeRunId: string | null; lastError: ChatLastError | null } {
  const failed = !activeRunId && lastRun?.status === 'failed';
  return {
    status: activeRunId ? 'busy' : failed ? 'error' : 'idle',
    activeRunId,
    lastError: failed
      ? {
          code: lastRun.error_code ?? 'failed',
          message: lastRun.error_message ?? '',
          runId: lastRun.id,
          at: new Date(lastRun.finished_at ?? Date.now()).toISOString(),
        }
      : null,
  };
}

/** The chats' current status, activeRunId and lastError, by id (chats that no longer exist are left out). */
export async function chatStatuses(db: Pick<Db, '$queryRaw'>, chatIds: string[]): Promise<Map<string, ReturnType<typeof chatStatusOf>>> {
  if (chatIds.length === 0) return new Map();
  const rows = await db.$queryRaw<{ id: string; active_run_id: string | null; last_run: LastRun }[]>`
    SELECT c.id::text, ${activeRunIdOf(Prisma.sql`c.id`)} AS active_run_id, ${LAST_RUN_OF_CHAT} AS last_run
    FROM chats c WHERE c.id = ANY(${chatIds}::uuid[])`;
  return new Map(rows.map((row) => [row.id, chatStatusOf(row.active_run_id, row.last_run)]));
}
