import type { ApiDeps } from '../deps.js';
import type { Caller } from '../http/http.js';
import { getRunForCaller } from '../runs/readRuns.js';
import { mintStreamToken } from '../../shared/accounts/apiKeys.js';
import { AppError } from '../../shared/infra/errors.js';
import { chatNotFound } from '../chats/chatErrors.js';

/**
 * POST /api/chat/runs/{runId}/stream-token: a backend holding an account key mints a short-lived,
 * read-only token for one run, for a web page (`?token=` on the stream route, or Bearer). Only an
 * account key can mint one: the token dies with it.
 */
export async function mintRunStreamToken(deps: ApiDeps, caller: Caller, runId: string): Promise<{ token: string; expiresAt: string }> {
  requireAccountKey(caller);
  await getRunForCaller(deps, caller, runId);
  return mint(deps, caller, runId);
}

/**
 * POST /api/chats/{chatId}/stream-token (SPEC section 19): a token for a page that follows a chat —
 * its events (`GET …/events?token=`), its stream and its messages — scoped to the chat's latest run.
 */
export async function mintChatStreamToken(deps: ApiDeps, caller: Caller, chatId: string): Promise<{ token: string; expiresAt: string; runId: string }> {
  requireAccountKey(caller);
  const [run] = await deps.db.$queryRaw<{ id: string }[]>`
    SELECT r.id::text FROM runs r JOIN chats c ON c.id = r.chat_id WHERE c.id = ${chatId}::uuid AND c.account_id = ${caller.accountId}::uuid
    ORDER BY r.seq DESC LIMIT 1`;
  if (!run) throw chatNotFound();
  return { ...(await mint(deps, caller, run.id)), runId: run.id };
}

function requireAccountKey(caller: Caller): void {
  if (caller.kind !== 'account' || !caller.keyId || !caller.accountId) {
    throw new AppError('scope_denied', 403, 'Only an account key can mint a stream token.', 'Mint it on your backend with your account key (ry_sk_…).');
  }
}

async function mint(deps: ApiDeps, caller: Caller, runId: string): Promise<{ token: string; expiresAt: string }> {
  const { token, expiresAt } = await mintStreamToken(deps.db, { keyId: caller.keyId!, accountId: caller.accountId! }, runId, deps.config.STREAM_TOKEN_TTL_MS);
  return { token, expiresAt: expiresAt.toISOString() };
}
