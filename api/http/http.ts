import type { Request } from 'express';
import { AppError } from '../../shared/infra/errors.js';
import type { KeyKind, Scope } from '../../shared/accounts/keys.js';

/** Who is calling, from the key alone. */
export type Caller = {
  accountId: string | null;
  keyId: string | null;
  kind: KeyKind | 'admin_token';
  scopes: Scope[];
  /** Set for run keys and stream tokens: the one run they may read. */
  runId: string | null;
  /** When the key stops working (run keys and stream tokens); a stream it opened ends then. */
  expiresAt: Date | null;
};

export type RequestWithCaller = Request & { caller?: Caller; requestId?: string };

export function callerOf(req: Request): Caller {
  const caller = (req as RequestWithCaller).caller;
  if (!caller) throw new Error('route is missing its authenticate middleware');
  return caller;
}

export function requestIdOf(req: Request): string {
  return (req as RequestWithCaller).requestId ?? 'unknown';
}

/** A JSON request body (415 otherwise). */
export function jsonBody(req: Request): unknown {
  if (!req.is('application/json')) {
    throw new AppError('unsupported_media_type', 415, 'The request body must be JSON.', 'Send Content-Type: application/json with a JSON object.');
  }
  return req.body;
}

/** The Idempotency-Key header, checked (1 to 255 characters). */
export function idempotencyKeyOf(req: Request): string | undefined {
  const key = req.get('idempotency-key');
  if (key === undefined) return undefined;
  if (key.length === 0 || key.length > 255) {
    throw new AppError('invalid_idempotency_key', 400, 'Idempotency-Key must be 1 to 255 characters.', 'Send a shorter key, such as a UUID.');
  }
  return key;
}

/** The account key behind a request, to attribute its runs' usage to (SPEC section 21); null for an operator or a scoped key. */
export const sentByKeyOf = (caller: Caller): string | null => (caller.kind === 'account' ? caller.keyId : null);
