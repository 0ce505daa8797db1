import { fileBlobPrefix } from '../../shared/files/fileStore.js';
import { deleteAccountRow, revokeKeysOfAccount } from '../../shared/accounts/apiKeys.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { deleteMatching } from '../../shared/infra/redis.js';
import { eraseChat } from '../../shared/runs/erasure.js';
import { ACTIVE_STATUSES } from '../../shared/runs/lifecycle.js';
import { closeChat } from '../chats/archiveChat.js';
import type { ApiDeps } from '../deps.js';
import type { Caller } from '../http/http.js';

/** How long the erasure waits for the account's interrupted runs to stop. */
const RUNS_STOP_WAIT_MS = 10_000;

export type ErasedAccount = { account: string; accountId: string; deleted: true; chats: number; runs: number };

/**
 * Erases all of an account's data (SPEC section 17; admin API and CLI): its keys stop working at
 * once, every chat is closed (queue dropped, active run interrupted) and, once the runs have
 * stopped, erased whole as DELETE /api/chats/{chatId} does (Postgres and Redis); then the account
 * itself goes, and with it, by the schema's cascades, whatever else it owned (keys, sessions, usage,
 * settings), and its idempotency records leave Redis.
 */
export async function eraseAccount(deps: ApiDeps, account: { id: string; name: string }): Promise<ErasedAccount> {
  await revokeKeysOfAccount(deps.db, account.id);
  const operator: Caller = {
    accountId: account.id,
    keyId: null,
    kind: 'admin_token',
    scopes: ['admin', 'runs:read', 'runs:write'],
    runId: null,
    expiresAt: null,
  };
  const chats = await deps.db.chat.findMany({ where: { accountId: account.id }, select: { id: true } });
  for (const chat of chats) await closeChat(deps, operator, chat.id).catch(() => {});
  const deadline = Date.now() + RUNS_STOP_WAIT_MS;
  while (Date.now() < deadline && (await deps.db.run.count({ where: { accountId: account.id, status: { in: [...ACTIVE_STATUSES] } } })) > 0) await sleep(100);
  let runs = 0;
  const erasure = { db: deps.db, redis: deps.redis, admission: deps.admission, prefix: deps.config.QUEUE_PREFIX, blobs: deps.blobs };
  for (const chat of chats) runs += (await eraseChat(erasure, chat.id, account.id))?.runs ?? 0;
  // Its files go with it by the cascade; their bytes first (uploads attached to no erased chat).
  for (const file of await deps.db.file.findMany({ where: { accountId: account.id }, select: { id: true } }))
    await deps.blobs.deletePrefix(fileBlobPrefix(file.id));
  await deleteAccountRow(deps.db, account.id);
  await deps.admission.forgetAccount(account.id);
  await deleteMatching(deps.redis, `${deps.config.QUEUE_PREFIX}:idempotency:{${account.id}}:*`);
  deps.logger.warn('account erased', { accountId: account.id, chats: chats.length, runs });
  return { account: account.name, accountId: account.id, deleted: true, chats: chats.length, runs };
}
