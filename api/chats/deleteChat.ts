import { setTimeout as sleep } from 'node:timers/promises';
import { ACTIVE_STATUSES } from '../../shared/runs/lifecycle.js';
import { eraseChat } from '../../shared/runs/erasure.js';
import type { ApiDeps } from '../deps.js';
import type { Caller } from '../http.js';
import { chatNotFound } from './chatErrors.js';
import { interruptActiveRun } from './interruptChat.js';
import { requireAccountCaller } from './readChats.js';

/** How long the erasure waits for an interrupted run's worker to let it go. */
const RUN_STOP_WAIT_MS = 5_000;

/**
 * DELETE /api/chats/{chatId} (SPEC section 17): the chat takes no more messages (archived), its
 * active run is interrupted and given a moment to stop, then everything of it goes from Postgres
 * and Redis (shared/runs/erasure.ts). 202; then 404 everywhere.
 */
export async function deleteChat(deps: ApiDeps, caller: Caller, chatId: string): Promise<{ chatId: string; deleted: true; runs: number }> {
  requireAccountCaller(caller);
  const archived = await deps.db.$executeRaw`
    UPDATE chats SET archived_at = COALESCE(archived_at, now()) WHERE id = ${chatId}::uuid AND (${caller.accountId}::uuid IS NULL OR account_id = ${caller.accountId}::uuid)`;
  if (archived === 0) throw chatNotFound();
  await deps.db.$executeRaw`DELETE FROM queued_messages WHERE chat_id = ${chatId}::uuid`;
  await interruptActiveRun(deps, caller, chatId);
  const deadline = Date.now() + RUN_STOP_WAIT_MS;
  while (Date.now() < deadline && (await deps.db.run.count({ where: { chatId, status: { in: [...ACTIVE_STATUSES] } } })) > 0) await sleep(100);
  const erased = await eraseChat({ db: deps.db, redis: deps.redis, runQueues: deps.runQueues, prefix: deps.config.QUEUE_PREFIX }, chatId, caller.accountId);
  if (!erased) throw chatNotFound();
  deps.logger.info('chat erased', { chatId, runs: erased.runs });
  return { chatId, deleted: true, runs: erased.runs };
}
