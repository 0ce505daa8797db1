import type { Db } from '../infra/db.js';
import { sealSecret, type SealedSecret } from './secrets.js';
import type { KeyedProvider, ProviderName } from '../agent/providerTable.js';

/** The providers an account may bring its own key for: those that need a key (shared/agent/providerTable.ts). */
export { KEYED_PROVIDERS, type KeyedProvider } from '../agent/providerTable.js';

/** An account's own key for a provider as a run's claim reads it: sealed, opened only on the worker that calls the provider. */
export type SealedProviderKey = { sealed: SealedSecret; baseUrl: string | null };

/**
 * Bring your own key (SPEC section 21): an account's provider key, sealed at rest, used by that
 * account's runs of the provider instead of the deployment's (the deployment's only when the account
 * has none). Set with the CLI (`accounts provider-keys set … --key-stdin`) or the admin API; it never
 * appears in job data, logs, traces, the timeline, Bull Board or an error — listings say which
 * providers have one, never the key.
 */
export async function setProviderKey(
  db: Db,
  accountId: string,
  provider: KeyedProvider,
  key: string,
  baseUrl: string | null,
  runyardSecret: string,
): Promise<void> {
  const sealed = JSON.stringify(sealSecret(key, runyardSecret));
  await db.$executeRaw`
    INSERT INTO account_provider_keys (account_id, provider, sealed, base_url) VALUES (${accountId}::uuid, ${provider}, ${sealed}::jsonb, ${baseUrl})
    ON CONFLICT (account_id, provider) DO UPDATE SET sealed = EXCLUDED.sealed, base_url = EXCLUDED.base_url, updated_at = now()`;
}

export async function unsetProviderKey(db: Db, accountId: string, provider: string): Promise<boolean> {
  return (await db.$executeRaw`DELETE FROM account_provider_keys WHERE account_id = ${accountId}::uuid AND provider = ${provider}`) > 0;
}

export async function providerKeysOf(db: Pick<Db, '$queryRaw'>, accountId: string): Promise<{ provider: string; baseUrl: string | null; updatedAt: string }[]> {
  const rows = await db.$queryRaw<{ provider: string; base_url: string | null; updated_at: Date }[]>`
    SELECT provider, base_url, updated_at FROM account_provider_keys WHERE account_id = ${accountId}::uuid ORDER BY provider`;
  return rows.map((row) => ({ provider: row.provider, baseUrl: row.base_url, updatedAt: row.updated_at.toISOString() }));
}

/** Whether the account has its own key for the provider (a model whose provider the deployment has no key for is then accepted). */
export async function hasProviderKey(db: Pick<Db, '$queryRaw'>, accountId: string, provider: ProviderName): Promise<boolean> {
  const [row] = await db.$queryRaw<{ one: number }[]>`
    SELECT 1 AS one FROM account_provider_keys WHERE account_id = ${accountId}::uuid AND provider = ${provider}`;
  return row !== undefined;
}
