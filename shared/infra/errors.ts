/**
 * The errors runyard knows by name. Each carries the stable code, the HTTP status and a fix;
 * api/http/middleware/errorHandler.ts maps them to the contract's error shape, and the worker uses
 * `retryable` to choose between a BullMQ retry and UnrecoverableError.
 */
export class AppError extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
    readonly fix: string,
    readonly extra: { retryAfterSeconds?: number; retryable?: boolean; headers?: Record<string, string>; details?: Record<string, unknown> } = {},
  ) {
    super(message);
    this.name = 'AppError';
  }
}

export const unauthorized = (detail = 'The API key is missing, unknown, revoked or expired.') =>
  new AppError('unauthorized', 401, detail, 'Send a valid key as "Authorization: Bearer <key>" or "x-api-key: <key>".');

export const scopeDenied = (scope: string) =>
  new AppError('scope_denied', 403, `This key lacks the "${scope}" scope.`, `Use a key that has the "${scope}" scope.`);

export const notFound = (code: string, what: string) =>
  new AppError(code, 404, `${what} was not found.`, 'Check the id; only resources of your own account are visible.');

export const validationFailed = (detail: string) => new AppError('validation_failed', 400, detail, 'Correct the request body as the API reference describes.');

export const conflict = (code: string, detail: string, fix: string) => new AppError(code, 409, detail, fix);

export const queueUnavailable = () =>
  new AppError(
    'queue_unavailable',
    503,
    'The run queue is unreachable; nothing was started.',
    'Retry in a few seconds; the same Idempotency-Key is safe to reuse.',
    { retryAfterSeconds: 2 },
  );

export const databaseUnavailable = () =>
  new AppError('database_unavailable', 503, 'The database is unreachable; nothing was started.', 'Retry in a few seconds.', { retryAfterSeconds: 2 });

/** An error raised while running a model: the worker retries it or fails the run at once. */
export class RunError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly retryable: boolean,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'RunError';
  }
}

/**
 * Whether an error means the database could not be reached (as opposed to a bad query): the api
 * answers those with 503 database_unavailable instead of an opaque 500.
 */
export function isDatabaseUnreachable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const name = `${err.name} ${(err as { code?: string }).code ?? ''} ${err.constructor?.name ?? ''}`;
  const fromDatabaseLayer =
    /Prisma|DriverAdapter|ECONN|P100[0-2]|57P0|08\d{3}/.test(name) ||
    /database|postgres/i.test(err.message) ||
    /adapter-pg|pg-pool|pg-protocol|@prisma\//.test(err.stack ?? '');
  return (
    fromDatabaseLayer &&
    /ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|connect|connection|terminat|timeout|reach/i.test(`${err.message} ${name} ${String(err.cause ?? '')}`)
  );
}

/** ACCOUNT_MAX_ACTIVE_RUNS reached: for a new run, and for a chat message (queued messages count as runs). */
export const tooManyActiveRuns = (max: number) =>
  new AppError(
    'too_many_active_runs',
    429,
    `This account already has ${max} active runs (queued, running or waiting for tool results) and queued messages.`,
    'Wait for some runs to finish (or cancel some), then retry.',
    { retryAfterSeconds: 5 },
  );

/** The codes a database error carries, Postgres's (SQLSTATE) and Prisma's, wherever the driver put them: on the error, its meta, or its cause. */
export function databaseErrorCodes(err: Error): string[] {
  const codes = [(err as { code?: unknown }).code, (err as { meta?: { code?: unknown } }).meta?.code, (err.cause as { code?: unknown } | undefined)?.code];
  return codes.filter((code): code is string => typeof code === 'string');
}

/** A foreign-key violation (23503; Prisma's P2003), optionally on a column named `column`: what the row refers to was deleted meanwhile. */
export function isForeignKeyViolation(err: unknown, column?: string): boolean {
  if (!(err instanceof Error)) return false;
  const codes = databaseErrorCodes(err);
  const meta = (err as { meta?: unknown }).meta;
  const text = `${err.message} ${meta ? JSON.stringify(meta) : ''}`;
  if (!codes.includes('23503') && !codes.includes('P2003') && !/foreign key constraint/i.test(text)) return false;
  return column === undefined || text.includes(column);
}
