/**
 * The shape of an account's spend limits and DEFAULT_LIMITS' syntax: pure, so the configuration can
 * check the variable at start without importing the limits' statements (usageLimits.ts).
 */
export const LIMIT_PERIODS = ['day', 'week', 'month'] as const;
export type LimitPeriod = (typeof LIMIT_PERIODS)[number];

export type AccountLimits = { period: LimitPeriod; spendMicros: number | null; tokens: number | null };

const LIMIT_ITEM = /^(tokens|spendUsd)=(\d+(?:\.\d+)?)\/(day|week|month)$/;

/**
 * DEFAULT_LIMITS (SPEC section 21), `tokens=1000000/day,spendUsd=5/day`: the limits of accounts
 * without their own. One period for both (an account's limits have one). Throws a message naming
 * what is wrong; '' is none.
 */
export function parseDefaultLimits(text: string): AccountLimits | null {
  const items = text
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
  if (items.length === 0) return null;
  const limits: AccountLimits = { period: 'day', spendMicros: null, tokens: null };
  const periods = new Set<string>();
  for (const item of items) {
    const match = LIMIT_ITEM.exec(item);
    if (!match) throw new Error(`"${item}" is not tokens=N/period or spendUsd=N/period (period: day, week or month)`);
    const [, kind, amount, period] = match as unknown as [string, 'tokens' | 'spendUsd', string, LimitPeriod];
    periods.add(period);
    limits.period = period;
    if (kind === 'tokens') {
      if (!Number.isInteger(Number(amount))) throw new Error(`"${item}": tokens are a whole number`);
      limits.tokens = Number(amount);
    } else limits.spendMicros = Math.round(Number(amount) * 1_000_000);
  }
  if (periods.size > 1) throw new Error('both limits must use the same period (an account has one)');
  return limits;
}
