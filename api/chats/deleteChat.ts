import { setTimeout as sleep } from 'node:timers/promises';
import { ACTIVE_STATUSES } from '../../shared/runs/lifecycle.js';
import { eraseChat } from '../../shared/runs/erasure.js';
import type { ApiDeps } from '../deps.js';
import type { Caller } from '../http/http.js';
import { chatNotFound } from './chatErrors.js';
import { closeChat } from './archiveChat.js';
import { requireAccountCaller } from './readChats.js';

/** How long the erasure waits for an interrupted run's worker to let it go. */
const RUN_STOP_WAIT_MS = 5_000;

/**
 * DELETE /api/chats/{chatId} (SPEC section 17): the chat is closed as archiving does (no more
 * messages, its queue dropped), its active run interrupted and given a moment to stop, then everything of it goes from Postgres
 * and Redis (shared/runs/erasure.ts). 202; then 404 everywhere.
 */
export async function deleteChat(deps: ApiDeps, caller: Caller, chatId: string): Promise<{ chatId: string; deleted: true; runs: number }> {
  requireAccountCaller(caller);
  await closeChat(deps, caller, chatId);
  const deadline = Date.now() + RUN_STOP_WAIT_MS;
  while (Date.now() < deadline && (await deps.db.run.count({ where: { chatId, status: { in: [...ACTIVE_STATUSES] } } })) > 0) await sleep(100);
  const erased = await eraseChat(
    { db: deps.db, redis: deps.redis, admission: deps.admission, prefix: deps.config.QUEUE_PREFIX, blobs: deps.blobs },
    chatId,
    caller.accountId,
  );
  if (!erased) throw chatNotFound();
  deps.logger.info('chat erased', { chatId, runs: erased.runs });
  return { chatId, deleted: true, runs: erased.runs };
}
