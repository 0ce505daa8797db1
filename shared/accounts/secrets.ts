import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

/**
 * AES-256-GCM for secrets carried in job data (the run's ephemeral key). The key is derived from
 * RUNYARD_SECRET, so any api or worker with the same secret can read what another wrote.
 */
export type SealedSecret = { v: 1; iv: string; tag: string; data: string };

const deriveKey = (secret: string) => createHash('sha256').update(`runyard:job-secrets:${secret}`).digest();

export function sealSecret(plaintext: string, secret: string): SealedSecret {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', deriveKey(secret), iv);
  const data = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return { v: 1, iv: iv.toString('base64url'), tag: cipher.getAuthTag().toString('base64url'), data: data.toString('base64url') };
}

export function openSecret(sealed: SealedSecret, secret: string): string {
  const decipher = createDecipheriv('aes-256-gcm', deriveKey(secret), Buffer.from(sealed.iv, 'base64url'));
  decipher.setAuthTag(Buffer.from(sealed.tag, 'base64url'));
  return Buffer.concat([decipher.update(Buffer.from(sealed.data, 'base64url')), decipher.final()]).toString('utf8');
}
