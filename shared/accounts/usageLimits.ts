import { AppError } from '../infra/errors.js';
import type { Db } from '../infra/db.js';
import { statement } from '../infra/sql.js';
import type { Logger } from '../infra/logger.js';
import type { AccountLimits, LimitPeriod } from './defaultLimits.js';

/**
 * Spend limits (SPEC section 14). An account may have, per UTC calendar period (day, week, month), a
 * limit on spend (micro-dollars of priced models) and on tokens (input + output of every model).
 * Every model call is charged to account_usage (a row per account, UTC day and slot) in the
 * statement that persists its usage; `runyard_usage_limit_reached` (prisma/migrations/
 * *_usage_limits_and_compaction) sums the period's days and is the one place that decides whether a
 * limit is reached — for provisioning, promotion of queued messages, chat messages, tool results and
 * a worker's check before each model call.
 */

export type LimitReached = { kind: 'tokens' | 'spendMicros'; limit: number; consumed: number; period: LimitPeriod; resetsAt: string };

/**
 * applyDefaultLimits at a process's start without waiting for the database: a process starts while
 * Postgres is away (it must), and the write is tried again every few seconds until it is done.
 * Returns what stops the retries.
 */
export function applyDefaultLimitsWhenReachable(db: Pick<Db, '$executeRaw'>, limits: AccountLimits | null, logger: Logger): () => void {
  let stopped = false;
  let retry: NodeJS.Timeout | undefined;
  const attempt = () =>
    applyDefaultLimits(db, limits).catch((err: Error) => {
      if (stopped) return;
      logger.warn('could not write DEFAULT_LIMITS to the database yet; trying again', { error: err.message });
      retry = setTimeout(attempt, 2_000);
      retry.unref();
    });
  void attempt();
  return () => {
    stopped = true;
    clearTimeout(retry);
  };
}

/** Writes DEFAULT_LIMITS where the database's limit checks read them (every process at its start; the same value fleet-wide). */
export async function applyDefaultLimits(db: Pick<Db, '$executeRaw'>, limits: AccountLimits | null): Promise<void> {
  if (!limits) {
    await db.$executeRaw`DELETE FROM deployment_limits`;
    return;
  }
  await db.$executeRaw`
    INSERT INTO deployment_limits (id, period, spend_micros, tokens) VALUES (true, ${limits.period}, ${limits.spendMicros}, ${limits.tokens})
    ON CONFLICT (id) DO UPDATE SET period = EXCLUDED.period, spend_micros = EXCLUDED.spend_micros, tokens = EXCLUDED.tokens`;
}

/**
 * A CTE that charges model calls to their accounts: `source` is an SQL select with columns
 * account_id, tokens and spend_micros (rows of one account are added up first, so that one statement
 * may charge many calls of the same account). Written to the slot of the backend's pid, like the
 * active-run counts, so that concurrent statements rarely wait on one row.
 */
export const chargeCte = (name: string, source: string) => `
  ${name} AS (
    INSERT INTO account_usage (account_id, day, slot, tokens, spend_micros)
    SELECT c.account_id, (now() AT TIME ZONE 'UTC')::date, pg_backend_pid() % 16, sum(c.tokens), sum(COALESCE(c.spend_micros, 0))
    FROM (${source}) c
    GROUP BY c.account_id
    HAVING sum(c.tokens) > 0 OR sum(COALESCE(c.spend_micros, 0)) > 0
    ORDER BY c.account_id
    ON CONFLICT (account_id, day, slot) DO UPDATE
      SET tokens = account_usage.tokens + EXCLUDED.tokens, spend_micros = account_usage.spend_micros + EXCLUDED.spend_micros
  )`;

/** Charges a run's account $2 tokens and $3 micro-dollars (a model call whose worker died mid-call: worker/attempt/modelCallLedger.ts). */
export const CHARGE_RUN_ACCOUNT = statement(
  'charge_run_account',
  `WITH ${chargeCte('charged', 'SELECT r.account_id, $2::bigint AS tokens, $3::bigint AS spend_micros FROM runs r WHERE r.id = $1::uuid')}
   SELECT 1 AS charged`,
);

/** The limit the account has reached this period, or null (one statement; the worker checks before each model call). */
export const LIMIT_REACHED = statement('usage_limit_reached', `SELECT runyard_usage_limit_reached($1::uuid) AS reached`);

const seconds = (until: string) => Math.max(1, Math.ceil((Date.parse(until) - Date.now()) / 1000));

/** The 429 a caller gets once the account has reached a limit: the limit, the consumption and the reset, with Retry-After. */
export function usageLimitExceeded(reached: LimitReached): AppError {
  const what = reached.kind === 'tokens' ? `${reached.consumed} of its ${reached.limit} tokens` : `${reached.consumed} of its ${reached.limit} micro-dollars`;
  return new AppError(
    'usage_limit_exceeded',
    429,
    `This account has used ${what} for this ${reached.period}; the limit resets at ${reached.resetsAt}.`,
    'Wait until the period resets, or ask an operator to raise the limit.',
    {
      retryAfterSeconds: seconds(reached.resetsAt),
      details: { kind: reached.kind, limit: reached.limit, consumed: reached.consumed, resetsAt: reached.resetsAt },
    },
  );
}

type Querier = Pick<Db, '$queryRaw'>;

/** The limit the account has reached this period, or null. */
export async function limitReached(db: Querier, accountId: string): Promise<LimitReached | null> {
  const [row] = await db.$queryRaw<{ reached: LimitReached | null }[]>`SELECT runyard_usage_limit_reached(${accountId}::uuid) AS reached`;
  return row?.reached ?? null;
}

export type RefusalPlace = 'start' | 'message' | 'tool_results';
type RefusalCounter = { inc(labels: { kind: string; where: string }): void };

/** Throws 429 usage_limit_exceeded (and counts the refusal) when the account has reached a limit this period. */
export async function assertWithinLimits(db: Querier, accountId: string, refusals: RefusalCounter, where: RefusalPlace): Promise<void> {
  const reached = await limitReached(db, accountId);
  if (!reached) return;
  refusals.inc({ kind: reached.kind, where });
  throw usageLimitExceeded(reached);
}

export type AccountUsageView = {
  period: LimitPeriod;
  periodStart: string;
  resetsAt: string;
  consumed: { tokens: number; spendMicros: number };
  limits: { spendMicros: number | null; tokens: number | null } | null;
  limitReached: LimitReached | null;
};

/**
 * The account's consumption this period and its limits (GET /api/usage, the CLI, the admin API). An
 * account without limits is shown its calendar month.
 */
export async function accountUsage(db: Querier, accountId: string): Promise<AccountUsageView> {
  const [row] = await db.$queryRaw<
    {
      period: LimitPeriod;
      period_start: string;
      resets_at: string;
      tokens: bigint;
      spend_micros: bigint;
      limit_spend_micros: bigint | null;
      limit_tokens: bigint | null;
      has_limits: boolean;
      reached: LimitReached | null;
    }[]
  >`
    WITH a AS (
      SELECT COALESCE(l.period, 'month') AS period, l.period IS NOT NULL AS has_limits, l.spend_micros AS limit_spend_micros, l.tokens AS limit_tokens
      FROM accounts ac LEFT JOIN LATERAL runyard_effective_limits(ac.id) l ON true WHERE ac.id = ${accountId}::uuid
    ), p AS (
      SELECT a.*, date_trunc(a.period, now() AT TIME ZONE 'UTC')::date AS period_start FROM a
    )
    SELECT p.period, to_char(p.period_start, 'YYYY-MM-DD"T"00:00:00"Z"') AS period_start,
      to_char(p.period_start + ('1 ' || p.period)::interval, 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS resets_at,
      COALESCE(used.tokens, 0)::bigint AS tokens, COALESCE(used.spend_micros, 0)::bigint AS spend_micros,
      p.limit_spend_micros, p.limit_tokens, p.has_limits, runyard_usage_limit_reached(${accountId}::uuid) AS reached
    FROM p, LATERAL (
      SELECT sum(u.tokens) AS tokens, sum(u.spend_micros) AS spend_micros FROM account_usage u WHERE u.account_id = ${accountId}::uuid AND u.day >= p.period_start
    ) used`;
  if (!row) throw new AppError('account_not_found', 404, 'No such account.', 'Check the account name or id.');
  return {
    period: row.period,
    periodStart: row.period_start,
    resetsAt: row.resets_at,
    consumed: { tokens: Number(row.tokens), spendMicros: Number(row.spend_micros) },
    limits: row.has_limits
      ? {
          spendMicros: row.limit_spend_micros === null ? null : Number(row.limit_spend_micros),
          tokens: row.limit_tokens === null ? null : Number(row.limit_tokens),
        }
      : null,
    limitReached: row.reached,
  };
}

/** Sets the account's limits (null clears them); at least one of spendMicros and tokens when setting. */
export async function setAccountLimits(db: Db, accountId: string, limits: AccountLimits | null): Promise<void> {
  await db.account.update({
    where: { id: accountId },
    data: limits
      ? {
          limitPeriod: limits.period,
          limitSpendMicros: limits.spendMicros === null ? null : BigInt(limits.spendMicros),
          limitTokens: limits.tokens === null ? null : BigInt(limits.tokens),
        }
      : { limitPeriod: null, limitSpendMicros: null, limitTokens: null },
  });
}

/**
 * No model is silently free under a limit (SPEC section 21): an account with a spend limit cannot use
 * a model the catalogue has no price for (400 model_not_priced). A query only for an unpriced model.
 */
export async function assertPricedForAccount(db: Pick<Db, '$queryRaw'>, accountId: string, modelId: string, priced: boolean): Promise<void> {
  if (priced) return;
  const [account] = await db.$queryRaw<{ limited: boolean }[]>`SELECT spend_micros IS NOT NULL AS limited FROM runyard_effective_limits(${accountId}::uuid)`;
  if (!account?.limited) return;
  throw new AppError(
    'model_not_priced',
    400,
    `The model "${modelId}" has no price in this server's catalogue, and this account has a spend limit: its calls could not be counted against it.`,
    'Pick a priced model (GET /api/models), or ask the operator to price it (models set) or to lift the spend limit.',
  );
}
