import { randomBytes } from 'node:crypto';
import type { Db } from '../../shared/infra/db.js';
import { createAccountKey, mintEphemeralKeyData } from '../../shared/accounts/apiKeys.js';
import type { Scope } from '../../shared/accounts/keys.js';

export type TestAccount = { accountId: string; key: string; auth: { authorization: string } };

/** A new account with a key of its own: tests never see each other's runs. */
export async function createAccount(db: Db, scopes?: Scope[]): Promise<TestAccount> {
  const created = await createAccountKey(db, `acct-${randomBytes(6).toString('hex')}`, scopes);
  return { accountId: created.accountId, key: created.rawKey, auth: { authorization: `Bearer ${created.rawKey}` } };
}

/** Stores a run key as the api mints it and returns the raw value (otherwise only job data has it, sealed). */
export async function createEphemeralKey(db: Db, accountId: string, runId: string, ttlMs = 60_000): Promise<string> {
  const key = mintEphemeralKeyData(accountId, runId, ttlMs);
  await db.apiKey.create({ data: key.row });
  return key.rawKey;
}
