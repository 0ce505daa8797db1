import type { Request } from 'express';
import type { KeyKind, Scope } from '../shared/keys.js';

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
