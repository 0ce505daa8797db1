import type { Db } from '../infra/db.js';
import { DEFAULT_ACCOUNT_SCOPES, EPHEMERAL_SCOPES, generateKey, hashKey, type KeyKind, type Scope } from './keys.js';

export type ApiKeyRow = {
  id: string;
  accountId: string;
  kind: KeyKind;
  hash: string;
  scopes: string[];
  runId: string | null;
  expiresAt: Date | null;
  revokedAt: Date | null;
  /** A stream token's minting key: the token is revoked with it. */
  mintedBy: { revokedAt: Date | null } | null;
};

export type AccountKeyInfo = { id: string; accountId: string; accountName: string; prefix: string; scopes: string[]; createdAt: Date };

/** Creates the account if needed and a new `ry_sk_` key for it; the raw key is returned once. */
export async function createAccountKey(db: Db, accountName: string, scopes: Scope[] = DEFAULT_ACCOUNT_SCOPES, name?: string) {
  const key = generateKey('account');
  const account = await db.account.upsert({ where: { name: accountName }, create: { name: accountName }, update: {} });
  const row = await db.apiKey.create({
    data: { accountId: account.id, kind: 'account', hash: key.hash, prefix: key.prefix, scopes, name: name ?? null },
  });
  return { rawKey: key.raw, id: row.id, accountId: account.id, accountName: account.name, prefix: row.prefix, scopes: row.scopes };
}

export async function listAccountKeys(db: Db, accountName?: string) {
  const rows = await db.apiKey.findMany({
    where: { kind: 'account', ...(accountName ? { account: { name: accountName } } : {}) },
    include: { account: true },
    orderBy: { createdAt: 'asc' },
  });
  return rows.map((row) => ({
    id: row.id,
    account: row.account.name,
    prefix: row.prefix,
    scopes: row.scopes,
    createdAt: row.createdAt,
    lastUsedAt: row.lastUsedAt,
    revokedAt: row.revokedAt,
  }));
}

/** Returns false when there is no such account key (ephemeral keys are revoked by their run's cleanup). */
export async function revokeAccountKey(db: Db, id: string): Promise<boolean> {
  const { count } = await db.apiKey.updateMany({ where: { id, kind: 'account' }, data: { revokedAt: new Date() } });
  return count === 1;
}

export async function findKeyByRaw(db: Db, raw: string): Promise<ApiKeyRow | null> {
  return db.apiKey.findUnique({
    where: { hash: hashKey(raw) },
    select: {
      id: true,
      accountId: true,
      kind: true,
      hash: true,
      scopes: true,
      runId: true,
      expiresAt: true,
      revokedAt: true,
      mintedBy: { select: { revokedAt: true } },
    },
  });
}

/**
 * A stream token (`ry_st_…`): read-only, for one run (its stream, the run, its chat's messages), for
 * a web page's EventSource. Stored hashed like every key; it dies with the account key that minted
 * it, with the run, or at `expiresAt`.
 */
export async function mintStreamToken(db: Db, minter: { keyId: string; accountId: string }, runId: string, ttlMs: number) {
  const key = generateKey('stream');
  const expiresAt = new Date(Date.now() + ttlMs);
  await db.apiKey.create({
    data: {
      accountId: minter.accountId,
      kind: 'stream',
      hash: key.hash,
      prefix: key.prefix,
      scopes: EPHEMERAL_SCOPES,
      runId,
      mintedById: minter.keyId,
      expiresAt,
    },
  });
  return { token: key.raw, expiresAt };
}

export function mintEphemeralKeyData(accountId: string, runId: string, ttlMs: number) {
  const key = generateKey('ephemeral');
  return {
    rawKey: key.raw,
    row: {
      accountId,
      kind: 'ephemeral' as const,
      hash: key.hash,
      prefix: key.prefix,
      scopes: EPHEMERAL_SCOPES,
      runId,
      expiresAt: new Date(Date.now() + ttlMs),
    },
  };
}

/**
 * Revokes a run's ephemeral keys, scoped by run, account and the ephemeral kind so that a bug can
 * never touch an account key. Returns how many keys were revoked now.
 */
export async function revokeEphemeralKeys(db: Db, accountId: string, runId: string, exceptKeyId?: string): Promise<number> {
  const { count } = await db.apiKey.updateMany({
    where: { runId, accountId, kind: 'ephemeral', revokedAt: null, ...(exceptKeyId ? { id: { not: exceptKeyId } } : {}) },
    data: { revokedAt: new Date() },
  });
  return count;
}

/** Whether a key still works: not revoked, not expired, and (a stream token) its minting key not revoked. For a stream it opened. */
export async function isKeyLive(db: Db, keyId: string, now = new Date()): Promise<boolean> {
  const row = await db.apiKey.findUnique({ where: { id: keyId }, select: { revokedAt: true, expiresAt: true, mintedBy: { select: { revokedAt: true } } } });
  return !!row && !row.revokedAt && !row.mintedBy?.revokedAt && !(row.expiresAt && row.expiresAt <= now);
}

/** Deletes up to `limit` expired run and stream keys (a bounded batch: a backlog goes over a few passes, in short transactions); how many. */
export async function deleteExpiredKeys(db: Pick<Db, '$executeRaw'>, limit: number): Promise<number> {
  return db.$executeRaw`
    DELETE FROM api_keys WHERE id IN (
      SELECT id FROM api_keys WHERE kind IN ('ephemeral', 'stream') AND expires_at < now() LIMIT ${limit})`;
}

/** Revokes every key of the account still valid (its erasure begins with this: nothing it holds works from here). */
export function revokeKeysOfAccount(db: Db, accountId: string) {
  return db.apiKey.updateMany({ where: { accountId, revokedAt: null }, data: { revokedAt: new Date() } });
}

/** Revokes a run's ephemeral key (a run whose provisioning is undone); a Prisma promise, for a batch transaction. */
export function revokeRunKey(db: Db, key: { keyId: string; accountId: string }) {
  return db.apiKey.updateMany({ where: { id: key.keyId, accountId: key.accountId, kind: 'ephemeral' }, data: { revokedAt: new Date() } });
}

/** When a key was last used (written at most every so often by the key resolver). */
export function recordKeyUse(db: Db, keyId: string, at: Date) {
  return db.apiKey.update({ where: { id: keyId }, data: { lastUsedAt: at } });
}

/** The account's row goes, and by the schema's cascades whatever else it owned (its erasure's last step). */
export async function deleteAccountRow(db: Db, accountId: string): Promise<void> {
  await db.account.delete({ where: { id: accountId } });
}
