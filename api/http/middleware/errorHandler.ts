import type { ErrorRequestHandler, Request, RequestHandler } from 'express';
import { ZodError } from 'zod';
import { AppError, databaseErrorCodes, databaseUnavailable, isDatabaseUnreachable, isForeignKeyViolation, unauthorized } from '../../../shared/infra/errors.js';
import type { Logger } from '../../../shared/infra/logger.js';
import { requestIdOf } from '../http.js';

export const docUrlFor = (code: string) => `/docs#error-${code}`;

type ErrorBody = { error: string; detail: string; fix: string; docUrl: string; requestId: string; details?: Record<string, unknown> };

function describeZodError(err: ZodError): AppError {
  const unknown = err.issues.find((issue) => issue.code === 'unrecognized_keys');
  if (unknown && unknown.code === 'unrecognized_keys') {
    const where = unknown.path.length ? ` in ${unknown.path.join('.')}` : '';
    const names = unknown.keys.map((key) => `"${key}"`).join(', ');
    return new AppError('unknown_field', 400, `Unknown field ${names}${where}.`, 'Remove the field; the API reference lists the accepted ones.');
  }
  const detail = err.issues
    .slice(0, 5)
    .map((issue) => (issue.path.length ? `${issue.path.join('.')}: ${issue.message}` : issue.message))
    .join('; ');
  return new AppError('validation_failed', 400, `Invalid request: ${detail}.`, 'Correct the request as the API reference describes.');
}

/** Express's own errors (body parser) that carry a client status. */
function describeHttpError(err: { status?: number; type?: string; message?: string }): AppError | undefined {
  if (err.type === 'entity.too.large') {
    return new AppError('payload_too_large', 413, 'The request body is larger than 1 MiB.', 'Send a smaller body.');
  }
  if (err.type === 'entity.parse.failed') {
    return new AppError('invalid_json', 400, 'The request body is not valid JSON.', 'Send a JSON object with Content-Type: application/json.');
  }
  if (err.type === 'encoding.unsupported' || err.type === 'charset.unsupported') {
    return new AppError('unsupported_encoding', 415, 'The request body encoding is not supported.', 'Send UTF-8 JSON without a content encoding.');
  }
  if (typeof err.status === 'number' && err.status >= 400 && err.status < 500) {
    return new AppError('bad_request', err.status, 'The request could not be read.', 'Check the headers and body.');
  }
  return undefined;
}

/**
 * Postgres refusing a value the request carried (a malformed uuid or timestamp, a NUL byte in text):
 * the routes validate what they read, so this is a backstop that answers 400, not an opaque 500.
 * 22P02 invalid_text_representation, 22007/22008 datetime, 22021 character_not_in_repertoire, 22003 out of range.
 */
const INVALID_VALUE_CODES = /\b(22P02|22007|22008|22021|22003)\b/;
function isInvalidValue(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return (
    INVALID_VALUE_CODES.test(databaseErrorCodes(err).join(' ')) ||
    /invalid input syntax for type|invalid byte sequence for encoding|out of range for type/i.test(err.message)
  );
}

/**
 * A row the request refers to was deleted meanwhile: an erased account's key still in another api
 * process's key cache for a moment (401, as it is from then on), or an erased chat (409).
 */
function erasedMeanwhile(err: unknown): AppError | undefined {
  if (!isForeignKeyViolation(err)) return undefined;
  if (isForeignKeyViolation(err, 'account_id')) return unauthorized('The account of this key was erased.');
  return new AppError('conflict', 409, 'Something this request refers to was deleted meanwhile.', 'Check the ids and retry.');
}

export function toAppError(err: unknown): AppError | undefined {
  if (err instanceof AppError) return err;
  const erased = erasedMeanwhile(err);
  if (erased) return erased;
  if (isDatabaseUnreachable(err)) return databaseUnavailable();
  if (isInvalidValue(err))
    return new AppError('validation_failed', 400, 'A value in the request is not valid (an id, a date or text).', 'Check the ids and values you sent.');
  if (err instanceof ZodError) return describeZodError(err);
  if (err && typeof err === 'object') return describeHttpError(err as { status?: number; type?: string });
  return undefined;
}

export function errorBody(err: AppError, requestId: string): ErrorBody {
  return {
    error: err.code,
    detail: err.message,
    fix: err.fix,
    docUrl: docUrlFor(err.code),
    requestId,
    ...(err.extra.details ? { details: err.extra.details } : {}),
  };
}

/** The one place errors become responses: known errors keep their status, anything else is an opaque 500. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const requestId = requestIdOf(req);
    const known =
      toAppError(err) ??
      new AppError('internal_error', 500, 'Something went wrong on our side.', `Retry later; if it persists, report request id ${requestId}.`);
    if (known.status >= 500) {
      logger.error('request failed', {
        error: err instanceof Error ? err.message : String(err),
        stack: err instanceof Error ? err.stack : undefined,
        code: known.code,
        method: req.method,
        path: req.path,
      });
    }
    if (res.headersSent) {
      res.end();
      return;
    }
    if (known.extra.retryAfterSeconds !== undefined) res.setHeader('Retry-After', String(known.extra.retryAfterSeconds));
    for (const [name, value] of Object.entries(known.extra.headers ?? {})) res.setHeader(name, value);
    // A route may have set another type (an HTML page) before it failed: the error is JSON.
    res.type('application/json');
    res.status(known.status).json(errorBody(known, requestId));
  };
}

/** The 404 for a path nothing serves (the full path, also inside a mounted router). */
export const routeNotFound = (req: Request) =>
  new AppError('route_not_found', 404, `No route ${req.method} ${req.originalUrl.split('?')[0]}.`, 'Check the path; GET /openapi.json lists every route.');

/** The admin surface with no ADMIN_TOKEN: 404 as for any unknown path, saying why and how to turn it on. */
export const adminSurfaceOff = (req: Request) =>
  new AppError(
    'route_not_found',
    404,
    `No route ${req.method} ${req.originalUrl.split('?')[0]}: the admin surface is off on this server.`,
    'Set ADMIN_TOKEN (16 characters or more) and restart the api, or send an admin-scoped key (npm run cli -- keys create --account ops --scopes admin).',
  );

/**
 * The routes of the OpenAPI document as (pattern, methods): a path that one of them serves with
 * other methods is 405 with `Allow`, not 404.
 */
export function methodNotAllowedHandler(paths: Record<string, object>): RequestHandler {
  const routes = Object.entries(paths).map(([template, operations]) => ({
    pattern: new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+')}/?$`),
    methods: Object.keys(operations)
      .filter((method) => /^(get|put|post|delete|patch)$/.test(method))
      .map((method) => method.toUpperCase()),
  }));
  return (req, _res, next) => {
    const path = req.originalUrl.split('?')[0]!;
    const allowed = new Set(routes.filter((route) => route.pattern.test(path)).flatMap((route) => route.methods));
    if (allowed.size === 0 || allowed.has(req.method)) return next();
    if (allowed.has('GET')) allowed.add('HEAD');
    const allow = [...allowed].sort().join(', ');
    next(
      new AppError('method_not_allowed', 405, `${req.method} is not allowed on ${path}.`, `Use one of: ${allow}.`, {
        headers: { Allow: allow },
      }),
    );
  };
}

export const notFoundHandler: RequestHandler = (req, _res, next) => next(routeNotFound(req));
