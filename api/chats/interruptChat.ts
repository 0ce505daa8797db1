import { Prisma } from '../../shared/infra/db.js';
import { activeRunIdOf } from '../../shared/runs/activeRun.js';
import { TransitionRefused } from '../../shared/runs/lifecycle.js';
import { cancelRun } from '../runs/cancelRun.js';
import type { ApiDeps } from '../deps.js';
import type { Caller } from '../http/http.js';
import { chatIdle, chatNotFound } from './chatErrors.js';

/** The error result each call a parked run waits on gets when the chat interrupts it: every provider wants each call answered. */
export const INTERRUPTED_CALL = 'interrupted';

export type Interrupted = { chatId: string; runId: string; status: string };

/**
 * Stops a chat's active run, if it has one, as a cancel does (SPEC section 12): a running run stops
 * its model stream, keeps its partial answer marked interrupted and ends cancelled; a queued one
 * ends at once; a parked one ends with each pending call closed by an `interrupted` error result.
 * Null when the chat has no active run (or it ended meanwhile). With `onlyRunId`, only that run is
 * interrupted: a caller that decided under the chat's lock that run X must stop never stops the run
 * that replaced X meanwhile (a queued message's, which may be the very message that asked).
 */
export async function interruptActiveRun(deps: ApiDeps, caller: Caller, chatId: string, onlyRunId?: string): Promise<Interrupted | null> {
  const [active] = await deps.db.$queryRaw<{ id: string | null }[]>`
    SELECT ${activeRunIdOf(Prisma.sql`c.id`)} AS id FROM chats c
    WHERE c.id = ${chatId}::uuid AND (${caller.accountId}::uuid IS NULL OR c.account_id = ${caller.accountId}::uuid)`;
  if (!active?.id || (onlyRunId !== undefined && active.id !== onlyRunId)) return null;
  try {
    const { status } = await cancelRun(deps, caller, active.id, { closedWith: INTERRUPTED_CALL });
    deps.logger.info('chat interrupted', { chatId, runId: active.id });
    return { chatId, runId: active.id, status };
  } catch (err) {
    if (err instanceof TransitionRefused) return null;
    throw err;
  }
}

/** POST /api/chats/{chatId}/interrupt: 409 chat_idle when there is nothing to interrupt. */
export async function interruptChat(deps: ApiDeps, caller: Caller, chatId: string): Promise<Interrupted> {
  const chat = await deps.db.chat.findFirst({ where: { id: chatId, accountId: caller.accountId! }, select: { id: true } });
  if (!chat) throw chatNotFound();
  const interrupted = await interruptActiveRun(deps, caller, chatId);
  if (!interrupted) throw chatIdle();
  return interrupted;
}
