import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import type { Db } from '../infra/db.js';
import { openSecret, sealSecret, type SealedSecret } from './secrets.js';

/**
 * The per-account secret that signs server-tool calls as Standard Webhooks do (`whsec_` + base64).
 * Stored sealed with RUNYARD_SECRET. After a rotation the previous secret keeps signing beside the
 * new one (two signatures in `webhook-signature`) for TOOL_SECRET_GRACE_MS, so a tool server can
 * switch to the new secret without refusing a call.
 */
export type ToolSecrets = { current: string; previous: string | null };

export const newToolSecret = () => `whsec_${randomBytes(32).toString('base64')}`;

export type SecretRow = { toolSecret: unknown; toolSecretPrevious: unknown; toolSecretPreviousUntil: Date | null };

/** The secrets of an account row as stored (sealed), opened; null when the account has none yet. */
export function openRow(row: SecretRow, runyardSecret: string): ToolSecrets | null {
  if (!row.toolSecret) return null;
  const previousValid = row.toolSecretPrevious && row.toolSecretPreviousUntil && row.toolSecretPreviousUntil.getTime() > Date.now();
  return {
    current: openSecret(row.toolSecret as SealedSecret, runyardSecret),
    previous: previousValid ? openSecret(row.toolSecretPrevious as SealedSecret, runyardSecret) : null,
  };
}

const select = { toolSecret: true, toolSecretPrevious: true, toolSecretPreviousUntil: true } as const;

/** The account's tool secrets, creating the first one if it has none (concurrent callers agree on one). */
export async function accountToolSecrets(db: Db, accountId: string, runyardSecret: string): Promise<ToolSecrets> {
  const existing = await db.account.findUniqueOrThrow({ where: { id: accountId }, select });
  const opened = openRow(existing, runyardSecret);
  if (opened) return opened;
  const sealed = sealSecret(newToolSecret(), runyardSecret);
  await db.$executeRaw`UPDATE accounts SET tool_secret = ${JSON.stringify(sealed)}::jsonb WHERE id = ${accountId}::uuid AND tool_secret IS NULL`;
  return openRow(await db.account.findUniqueOrThrow({ where: { id: accountId }, select }), runyardSecret)!;
}

/** Replaces the account's secret; the old one keeps signing for `graceMs`. */
export async function rotateToolSecret(db: Db, accountId: string, runyardSecret: string, graceMs: number): Promise<ToolSecrets> {
  const before = await accountToolSecrets(db, accountId, runyardSecret);
  await db.account.update({
    where: { id: accountId },
    data: {
      toolSecret: sealSecret(newToolSecret(), runyardSecret),
      toolSecretPrevious: sealSecret(before.current, runyardSecret),
      toolSecretPreviousUntil: new Date(Date.now() + graceMs),
    },
  });
  return accountToolSecrets(db, accountId, runyardSecret);
}

const signers = new Map<string, Webhook>();
const signerFor = (secret: string): Webhook => {
  let signer = signers.get(secret);
  if (!signer) {
    if (signers.size >= 1_000) signers.clear();
    signer = new Webhook(secret);
    signers.set(secret, signer);
  }
  return signer;
};

/** Standard Webhooks headers for one delivery: every valid secret signs it. */
export function signedHeaders(secrets: ToolSecrets, messageId: string, payload: string, at = new Date()): Record<string, string> {
  const signatures = [secrets.current, ...(secrets.previous ? [secrets.previous] : [])].map((secret) => signerFor(secret).sign(messageId, at, payload));
  return {
    'webhook-id': messageId,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': signatures.join(' '),
  };
}
