import type { ApiDeps } from './deps.js';
import type { Caller } from './http.js';
import { getRunForCaller } from './readRuns.js';
import { mintStreamToken } from '../shared/accounts/apiKeys.js';
import { AppError } from '../shared/infra/errors.js';

/**
 * POST /api/chat/runs/{runId}/stream-token: a backend holding an account key mints a short-lived,
 * read-only token for one run, for a web page (`?token=` on the stream route, or Bearer). Only an
 * account key can mint one: the token dies with it.
 */
export async function mintRunStreamToken(deps: ApiDeps, caller: Caller, runId: string): Promise<{ token: string; expiresAt: string }> {
  if (caller.kind !== 'account' || !caller.keyId || !caller.accountId) {
    throw new AppError('scope_denied', 403, 'Only an account key can mint a stream token.', 'Mint it on your backend with your account key (ry_sk_…).');
  }
  await getRunForCaller(deps, caller, runId);
  const { token, expiresAt } = await mintStreamToken(deps.db, { keyId: caller.keyId, accountId: caller.accountId }, runId, deps.config.STREAM_TOKEN_TTL_MS);
  return { token, expiresAt: expiresAt.toISOString() };
}
