import { createCipheriv, createDecipheriv, createHash, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';

/**
 * AES-256-GCM for secrets carried in job data (the run's ephemeral key). The key is derived from
 * RUNYARD_SECRET, so any api or worker with the same secret can read what another wrote.
 */
export type SealedSecret = { v: 1; iv: string; tag: string; data: string };

// Derived once per secret (a process holds one, two while it is rotated): a key object, which the
// cipher takes without copying the key material into a new one on every run.
const derived = new Map<string, KeyObject>();
function deriveKey(secret: string): KeyObject {
  let key = derived.get(secret);
  if (!key) {
    if (derived.size >= 8) derived.clear();
    key = createSecretKey(createHash('sha256').update(`runyard:job-secrets:${secret}`).digest());
    derived.set(secret, key);
  }
  return key;
}

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
