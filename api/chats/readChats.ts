import { z } from 'zod';
import { AppError } from '../../shared/infra/errors.js';
import { Prisma } from '../../shared/infra/db.js';
import { queuedCountOf } from '../../shared/chats/queuedMessages.js';
import { activeRunIdOf } from '../../shared/runs/activeRun.js';
import type { ApiDeps } from '../deps.js';
import type { Caller } from '../http/http.js';
import { currentSettings, type ChatSettings } from './chatSettings.js';
import { chatNotFound } from './chatErrors.js';
import { chatStatusOf, LAST_RUN_OF_CHAT, STATUS_OF_CHAT, type ChatLastError, type ChatStatus, type LastRun } from '../../shared/chats/chatStatus.js';

export type { ChatStatus };

export type ChatView = {
  chatId: string;
  /** The chat's session: its workspace's (SPEC section 18). */
  sessionId: string;
  /** Whether its runs work in the session's workspace. */
  workspace: boolean;
  title: string | null;
  /** error: idle, and its last run failed (SPEC section 19). */
  status: ChatStatus;
  activeRunId: string | null;
  /** Its last run's error while the chat is in `error`; cleared when a run of the chat starts. */
  lastError: ChatLastError | null;
  labels: Record<string, string>;
  queuedMessages: number;
  settings: ChatSettings;
  archived: boolean;
  createdAt: string;
  lastActivityAt: string;
};

type ChatRow = {
  id: string;
  session_id: string;
  workspace: boolean;
  title: string | null;
  settings: unknown;
  archived_at: Date | null;
  created_at: Date;
  last_activity_at: Date;
  active_run_id: string | null;
  queued: number;
  labels: Record<string, string>;
  last_run: LastRun;
};

/** A run key or stream token reads its run, its stream and its chat's messages only. */
export function requireAccountCaller(caller: Caller): void {
  if (caller.runId) {
    throw new AppError('scope_denied', 403, 'A run key or stream token reads its run, its stream and its chat’s messages only.', 'Use an account key.');
  }
}

/** What a chat's view reads of a chat `c`. */
const CHAT_VIEW_COLUMNS = Prisma.sql`c.id::text, c.session_id::text, c.workspace, c.title, c.settings, c.archived_at, c.created_at, c.last_activity_at,
  ${activeRunIdOf(Prisma.sql`c.id`)} AS active_run_id, ${queuedCountOf(Prisma.sql`c.id`)} AS queued, c.labels,
  ${LAST_RUN_OF_CHAT} AS last_run`;

async function toView(deps: ApiDeps, row: ChatRow): Promise<ChatView> {
  return {
    chatId: row.id,
    sessionId: row.session_id,
    workspace: row.workspace,
    title: row.title,
    ...chatStatusOf(row.active_run_id, row.last_run),
    labels: row.labels ?? {},
    queuedMessages: row.queued,
    settings: await currentSettings(deps.db, row.id, row.settings),
    archived: row.archived_at !== null,
    createdAt: row.created_at.toISOString(),
    lastActivityAt: row.last_activity_at.toISOString(),
  };
}

/** GET /api/chats/{chatId} (an operator, with no account, sees any chat: the admin route and the CLI). */
export async function getChat(deps: ApiDeps, caller: Caller, chatId: string): Promise<ChatView> {
  requireAccountCaller(caller);
  const [row] = await deps.db.$queryRaw<ChatRow[]>`
    SELECT ${CHAT_VIEW_COLUMNS}
    FROM chats c WHERE c.id = ${chatId}::uuid AND (${caller.accountId}::uuid IS NULL OR c.account_id = ${caller.accountId}::uuid)`;
  if (!row) throw chatNotFound();
  return toView(deps, row);
}

const invalidCursor = () => new AppError('invalid_cursor', 400, 'The cursor does not belong to this list.', 'Use the nextCursor of the previous page.');

function decodeCursor(cursor: string): { at: Date; id: string } {
  const [at, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  const date = new Date(at ?? '');
  // Only what this API wrote: a uuid and a time Postgres can hold (a crafted one must not reach the query).
  const time = date.getTime();
  if (!id || !z.uuid().safeParse(id).success || Number.isNaN(time) || time < 0 || time > Date.UTC(9999, 11, 31)) throw invalidCursor();
  return { at: date, id };
}

/** GET /api/chats: the caller's chats, most recent activity first, in cursor pages. */
export async function listChats(
  deps: ApiDeps,
  caller: Caller,
  query: { archived: 'true' | 'false'; limit: number; cursor?: string; q?: string; label?: string; status?: ChatStatus },
) {
  requireAccountCaller(caller);
  const after = query.cursor ? decodeCursor(query.cursor) : null;
  const archived = query.archived === 'true';
  // ?q=: the title contains it (case-insensitive, LIKE's wildcards taken literally); ?label=k:v; ?status=.
  const titleLike = query.q === undefined ? null : `%${query.q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
  const label =
    query.label === undefined ? null : JSON.stringify({ [query.label.slice(0, query.label.indexOf(':'))]: query.label.slice(query.label.indexOf(':') + 1) });
  const rows = await deps.db.$queryRaw<ChatRow[]>`
    SELECT ${CHAT_VIEW_COLUMNS}
    FROM chats c
    WHERE c.account_id = ${caller.accountId}::uuid AND (c.archived_at IS NOT NULL) = ${archived}
      AND (${titleLike}::text IS NULL OR c.title ILIKE ${titleLike}::text)
      AND (${label}::jsonb IS NULL OR c.labels @> ${label}::jsonb)
      AND (${query.status ?? null}::text IS NULL OR ${STATUS_OF_CHAT} = ${query.status ?? null}::text)
      AND (${after?.at ?? null}::timestamptz IS NULL OR (c.last_activity_at, c.id) < (${after?.at ?? null}::timestamptz, ${after?.id ?? null}::uuid))
    ORDER BY c.last_activity_at DESC, c.id DESC
    LIMIT ${query.limit + 1}`;
  const page = rows.slice(0, query.limit);
  const last = page.at(-1);
  return {
    chats: await Promise.all(page.map((row) => toView(deps, row))),
    nextCursor: rows.length > query.limit && last ? Buffer.from(`${last.last_activity_at.toISOString()}|${last.id}`).toString('base64url') : null,
  };
}
