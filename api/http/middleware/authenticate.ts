import { timingSafeEqual, createHash } from 'node:crypto';
import type { Request, RequestHandler } from 'express';
import { AppError, scopeDenied, unauthorized } from '../../../shared/infra/errors.js';
import type { AuthFailureLimiter } from './authFailures.js';
import { keyFromHeaders, type Scope } from '../../../shared/accounts/keys.js';
import type { Caller, RequestWithCaller } from '../http.js';
import type { KeyResolver } from '../keyResolver.js';

const digest = (value: string) => createHash('sha256').update(value).digest();
/** Compares two secrets in constant time (their digests, so lengths leak nothing either). */
export const sameSecret = (a: string, b: string) => timingSafeEqual(digest(a), digest(b));

/** Where a request's credential came from: the header schemes, or `?token=` (stream tokens only). */
type Presented = { scheme: 'bearer' | 'basic' | 'x-api-key' | 'query'; secret: string };

/**
 * The credential a request presents: `Authorization: Bearer`, `x-api-key`, on the admin surface
 * `Authorization: Basic` (its password: ADMIN_TOKEN or an admin-scoped key, for browsers), and on
 * the stream route `?token=`.
 */
function presentedCredential(req: Request, opts: { basic?: boolean; queryTokenPath?: RegExp }): Presented | undefined {
  const header = req.get('authorization') ?? '';
  const basic = opts.basic ? /^basic\s+(\S+)\s*$/i.exec(header) : null;
  if (basic) {
    const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
    return { scheme: 'basic', secret: decoded.slice(decoded.indexOf(':') + 1) };
  }
  const bearer = keyFromHeaders(req.get('authorization'), undefined);
  if (bearer) return { scheme: 'bearer', secret: bearer };
  const xApiKey = keyFromHeaders(undefined, req.get('x-api-key'));
  if (xApiKey) return { scheme: 'x-api-key', secret: xApiKey };
  if (opts.queryTokenPath?.test(req.path) && typeof req.query.token === 'string') return { scheme: 'query', secret: req.query.token };
  return undefined;
}

const ADMIN_CALLER: Caller = { accountId: null, keyId: null, kind: 'admin_token', scopes: ['admin'], runId: null, expiresAt: null };
const BASIC_CHALLENGE = { 'WWW-Authenticate': 'Basic realm="runyard admin", charset="UTF-8"' };

const tooManyFailures = (retryAfterSeconds: number) =>
  new AppError(
    'rate_limited',
    429,
    'Too many failed authentications from this address (or the whole service): this attempt was not checked further.',
    'Check the key you send ("Authorization: Bearer <key>"); retry after the Retry-After delay. A valid key is never refused by this limit.',
    { retryAfterSeconds },
  );

/** Why nothing was read as a credential: an Authorization header without a scheme runyard takes gets a hint. */
function missingCredentialDetail(req: Request): string {
  const header = req.get('authorization')?.trim();
  if (!header) return 'No API key was sent.';
  if (/^ry_(sk|ek|st)_/.test(header)) return 'The Authorization header holds a key without the word Bearer: send "Authorization: Bearer <key>".';
  return 'The Authorization header is not "Bearer <key>": send "Authorization: Bearer <key>" or "x-api-key: <key>".';
}

/**
 * With `optional`, a request without credentials passes on with no caller (the admin gate decides).
 * A credential that fails (whatever the scheme: Bearer, x-api-key, Basic, ?token=) counts towards
 * the failed-authentication limits and, past them, is 429; a valid one always passes, and a request
 * with no credential is a 401 that counts as nothing (see AuthFailureLimiter).
 */
export function authenticate(
  keys: KeyResolver,
  opts: { adminToken?: string; optional?: boolean; basic?: boolean; queryTokenPath?: RegExp; failures?: AuthFailureLimiter } = {},
): RequestHandler {
  const refuse = async (req: Request, presented: Presented, detail?: string) => {
    const wait = (await opts.failures?.failed(req.ip ?? 'unknown')) ?? 0;
    if (wait > 0) return tooManyFailures(wait);
    const error = unauthorized(detail);
    return presented.scheme === 'basic' ? new AppError(error.code, error.status, error.message, error.fix, { headers: BASIC_CHALLENGE }) : error;
  };
  return async (req, _res, next) => {
    try {
      const presented = presentedCredential(req, opts);
      if (!presented) {
        if (opts.optional) return next();
        throw unauthorized(missingCredentialDetail(req));
      }
      if (opts.adminToken && (presented.scheme === 'bearer' || presented.scheme === 'basic') && sameSecret(presented.secret, opts.adminToken)) {
        (req as RequestWithCaller).caller = ADMIN_CALLER;
        return next();
      }
      const row = await keys.resolve(presented.secret);
      if (!row) throw await refuse(req, presented);
      if (presented.scheme === 'query' && row.kind !== 'stream') {
        // URLs end up in logs, proxies and browser history: only a short-lived stream token belongs there.
        throw await refuse(req, presented, 'Only a stream token (ry_st_…) may be sent as ?token=; send other keys in the Authorization header.');
      }
      (req as RequestWithCaller).caller = {
        accountId: row.accountId,
        keyId: row.id,
        kind: row.kind,
        scopes: row.scopes as Scope[],
        runId: row.runId,
        expiresAt: row.expiresAt,
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
