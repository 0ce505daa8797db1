import { timingSafeEqual, createHash } from 'node:crypto';
import type { Request, RequestHandler } from 'express';
import { AppError, scopeDenied, unauthorized } from '../../shared/errors.js';
import type { AuthFailureLimiter } from './authFailures.js';
import { keyFromHeaders, type Scope } from '../../shared/keys.js';
import type { Caller, RequestWithCaller } from '../http.js';
import type { KeyResolver } from '../keyResolver.js';

const digest = (value: string) => createHash('sha256').update(value).digest();
const sameSecret = (a: string, b: string) => timingSafeEqual(digest(a), digest(b));

/** ADMIN_TOKEN as a Bearer token, or as the password of HTTP Basic auth (for browsers). */
function presentsAdminToken(req: Request, adminToken: string | undefined): boolean {
  if (!adminToken) return false;
  const header = req.get('authorization') ?? '';
  const bearer = /^bearer\s+(\S+)\s*$/i.exec(header);
  if (bearer) return sameSecret(bearer[1]!, adminToken);
  const basic = /^basic\s+(\S+)\s*$/i.exec(header);
  if (basic) {
    const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
    return sameSecret(decoded.slice(decoded.indexOf(':') + 1), adminToken);
  }
  return false;
}

const ADMIN_CALLER: Caller = { accountId: null, keyId: null, kind: 'admin_token', scopes: ['admin'], runId: null };

/** With `optional`, a request without credentials passes on with no caller (the admin gate decides). */
export function authenticate(
  keys: KeyResolver,
  opts: { adminToken?: string; optional?: boolean; queryTokenPath?: RegExp; failures?: AuthFailureLimiter } = {},
): RequestHandler {
  const refuse = (req: Request, detail?: string) => {
    opts.failures?.recordFailure(req.ip ?? 'unknown');
    return unauthorized(detail);
  };
  return async (req, _res, next) => {
    try {
      const wait = opts.failures?.retryAfterSeconds(req.ip ?? 'unknown') ?? 0;
      if (wait > 0) {
        throw new AppError(
          'rate_limited',
          429,
          'Too many failed authentications from this address.',
          'Check the key you send; retry after the Retry-After delay.',
          {
            retryAfterSeconds: wait,
          },
        );
      }
      if (presentsAdminToken(req, opts.adminToken)) {
        (req as RequestWithCaller).caller = ADMIN_CALLER;
        return next();
      }
      const queryToken = opts.queryTokenPath?.test(req.path) && typeof req.query.token === 'string' ? req.query.token : undefined;
      const raw = keyFromHeaders(req.get('authorization'), req.get('x-api-key')) ?? queryToken;
      if (!raw) {
        if (opts.optional) return next();
        throw refuse(req, 'No API key was sent.');
      }
      const row = await keys.resolve(raw);
      if (!row) throw refuse(req);
      (req as RequestWithCaller).caller = {
        accountId: row.accountId,
        keyId: row.id,
        kind: row.kind,
        scopes: row.scopes as Scope[],
        runId: row.runId,
      };
      next();
    } catch (err) {
      next(err);
    }
  };
}

export function requireScope(scope: Scope): RequestHandler {
  return (req, _res, next) => {
    const caller = (req as RequestWithCaller).caller;
    if (!caller) return next(unauthorized());
    next(caller.scopes.includes(scope) ? undefined : scopeDenied(scope));
  };
}
