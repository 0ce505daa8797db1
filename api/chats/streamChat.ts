import type { Request, Response } from 'express';
import { Prisma } from '../../shared/infra/db.js';
import { activeRunIdOf } from '../../shared/runs/activeRun.js';
import type { ApiDeps } from '../deps.js';
import type { Caller } from '../http/http.js';
import { streamRun } from '../streams/streamRun.js';
import { chatNotFound } from './chatErrors.js';

/**
 * GET /api/chats/{chatId}/stream: the stream of the chat's active run, exactly as the run's own
 * stream (resumable with Last-Event-ID or ?after=), or 204 when the chat has none — what the AI
 * SDK's `resumeStream` expects of a chat's stream route. A stream token (or run key) of that run
 * may read it; of another run of the chat, it gets 204 once its run is not the active one.
 */
export async function streamChat(deps: ApiDeps, req: Request, res: Response, caller: Caller, chatId: string, after?: string): Promise<void> {
  const [chat] = await deps.db.$queryRaw<{ active_run_id: string | null }[]>`
    SELECT ${activeRunIdOf(Prisma.sql`c.id`)} AS active_run_id
    FROM chats c WHERE c.id = ${chatId}::uuid AND c.account_id = ${caller.accountId}::uuid`;
  if (!chat) throw chatNotFound();
  if (caller.runId) {
    const [own] = await deps.db.$queryRaw<{ id: string }[]>`SELECT id::text FROM runs WHERE id = ${caller.runId}::uuid AND chat_id = ${chatId}::uuid`;
    if (!own) throw chatNotFound();
  }
  if (!chat.active_run_id || (caller.runId && caller.runId !== chat.active_run_id)) {
    res.status(204).end();
    return;
  }
  await streamRun(deps, req, res, caller, chat.active_run_id, after);
}
