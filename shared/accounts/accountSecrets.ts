import type { Db } from '../infra/db.js';
import { AppError } from '../infra/errors.js';
import { openSecret, sealSecret, type SealedSecret } from './secrets.js';

/** A secret's name, as `mcpServers[].auth.secret` names it. */
export const SECRET_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * An account's named secrets (SPEC section 21): credentials for its MCP servers, sealed with
 * RUNYARD_SECRET at rest, set with the CLI (`accounts secrets set … --value-stdin`) or the admin API,
 * never shown again (a list names them only). A worker opens the ones its run's MCP servers name,
 * and sends each only in the header that server's `auth` says.
 */
export async function setAccountSecret(db: Db, accountId: string, name: string, value: string, runyardSecret: string): Promise<void> {
  const sealed = JSON.stringify(sealSecret(value, runyardSecret));
  await db.$executeRaw`
    INSERT INTO account_secrets (account_id, name, sealed) VALUES (${accountId}::uuid, ${name}, ${sealed}::jsonb)
    ON CONFLICT (account_id, name) DO UPDATE SET sealed = EXCLUDED.sealed, updated_at = now()`;
}

export async function unsetAccountSecret(db: Db, accountId: string, name: string): Promise<boolean> {
  return (await db.$executeRaw`DELETE FROM account_secrets WHERE account_id = ${accountId}::uuid AND name = ${name}`) > 0;
}

export async function accountSecretNames(db: Pick<Db, '$queryRaw'>, accountId: string): Promise<{ name: string; updatedAt: string }[]> {
  const rows = await db.$queryRaw<{ name: string; updated_at: Date }[]>`
    SELECT name, updated_at FROM account_secrets WHERE account_id = ${accountId}::uuid ORDER BY name`;
  return rows.map((row) => ({ name: row.name, updatedAt: row.updated_at.toISOString() }));
}

/** The secrets `names` of the account, opened (a name it has not is simply absent). */
export async function openAccountSecrets(db: Pick<Db, '$queryRaw'>, accountId: string, names: string[], runyardSecret: string): Promise<Map<string, string>> {
  if (names.length === 0) return new Map();
  const rows = await db.$queryRaw<{ name: string; sealed: SealedSecret }[]>`
    SELECT name, sealed FROM account_secrets WHERE account_id = ${accountId}::uuid AND name = ANY(${names}::text[])`;
  return new Map(rows.map((row) => [row.name, openSecret(row.sealed, runyardSecret)]));
}

/** At POST: every secret the request's MCP servers name exists for the account (400 secret_not_found naming it). */
export async function assertSecretsExist(db: Pick<Db, '$queryRaw'>, accountId: string, names: string[]): Promise<void> {
  if (names.length === 0) return;
  const have = new Set((await accountSecretNames(db, accountId)).map((row) => row.name));
  const missing = names.find((name) => !have.has(name));
  if (missing)
    throw new AppError(
      'secret_not_found',
      400,
      `mcpServers[].auth names the secret "${missing}", which this account does not have.`,
      'Set it first: npm run cli -- accounts secrets set --account <account> --name <name> --value-stdin (or PUT /api/admin/accounts/{account}/secrets/{name}).',
    );
}
