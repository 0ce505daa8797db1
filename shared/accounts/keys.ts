import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const SCOPES = ['runs:write', 'runs:read', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];
export const DEFAULT_ACCOUNT_SCOPES: Scope[] = ['runs:write', 'runs:read'];
export const EPHEMERAL_SCOPES: Scope[] = ['runs:read'];

export type KeyKind = 'account' | 'ephemeral' | 'stream';
const PREFIX: Record<KeyKind, string> = { account: 'ry_sk_', ephemeral: 'ry_ek_', stream: 'ry_st_' };

export type NewKey = { raw: string; hash: string; prefix: string };

export const hashKey = (raw: string): string => createHash('sha256').update(raw).digest('hex');

/** 32 random bytes, base64url: the raw key is shown once and only its hash is stored. */
export function generateKey(kind: KeyKind): NewKey {
  const raw = PREFIX[kind] + randomBytes(32).toString('base64url');
  return { raw, hash: hashKey(raw), prefix: raw.slice(0, PREFIX[kind].length + 6) };
}

export function looksLikeKey(raw: string): boolean {
  return /^ry_(sk|ek|st)_[A-Za-z0-9_-]{43}$/.test(raw);
}

export function hashesEqual(a: string, b: string): boolean {
  const left = Buffer.from(a, 'hex');
  const right = Buffer.from(b, 'hex');
  return left.length === right.length && timingSafeEqual(left, right);
}

/** `Authorization: Bearer <key>` (keyword in any case) or `x-api-key: <key>`. */
export function keyFromHeaders(authorization: string | undefined, xApiKey: string | undefined): string | undefined {
  if (authorization) {
    const match = /^bearer\s+(\S+)\s*$/i.exec(authorization);
    if (match) return match[1];
  }
  return xApiKey?.trim() || undefined;
}
