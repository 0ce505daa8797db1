import { Prisma, type Db } from '../infra/db.js';

/**
 * Usage reports (SPEC section 21): token and cost sums of the model calls recorded with their
 * messages — each answer's (source `run`) and each compaction's (source `compaction`) — and each
 * title call (source `title`, recorded in title_calls) over a
 * period, grouped by one dimension. Computed from the same rows GET …/messages shows, so a report
 * equals the per-message figures exactly.
 */
export const ACCOUNT_GROUPS = ['day', 'model', 'chat', 'key', 'source'] as const;
export const ADMIN_GROUPS = ['account', 'model', 'day'] as const;
export type ReportGroup = (typeof ACCOUNT_GROUPS)[number] | (typeof ADMIN_GROUPS)[number];

export type ReportRow = Record<string, string> & {
  inputTokens: number;
  cachedInputTokens: number;
  outputTokens: number;
  reasoningTokens: number;
  costMicros: number;
};

export type UsageReport = { from: string; to: string; groupBy: ReportGroup; rows: ReportRow[] };

const KEY: Record<ReportGroup, Prisma.Sql> = {
  day: Prisma.sql`to_char(u.at AT TIME ZONE 'UTC', 'YYYY-MM-DD')`,
  model: Prisma.sql`COALESCE(u.model, 'unknown')`,
  chat: Prisma.sql`u.chat_id::text`,
  // The account key that sent the run or its message; 'none' for an operator's (the admin API, the CLI).
  key: Prisma.sql`COALESCE(u.key_id::text, 'none')`,
  source: Prisma.sql`u.source`,
  account: Prisma.sql`a.name`,
};

type Row = { key: string; input: bigint; cached: bigint; output: bigint; reasoning: bigint; cost: bigint };

/**
 * Every model call recorded with a message over the period, as rows `u` (at, model, chat_id,
 * source, account_id, key_id, input, cached, output, reasoning, cost): the one definition the reports and
 * the admin usage page sum.
 */
const usageRows = (accountId: string | null, from: Date, to: Date) => Prisma.sql`
  SELECT m.created_at AS at, m.model, m.chat_id, 'run' AS source, c.account_id, r.sent_by_key_id AS key_id,
    COALESCE(m.input_tokens, 0) AS input, COALESCE(m.cached_input_tokens, 0) AS cached, COALESCE(m.output_tokens, 0) AS output,
    COALESCE(m.reasoning_tokens, 0) AS reasoning, COALESCE(m.cost_micros, 0) AS cost
  FROM messages m JOIN chats c ON c.id = m.chat_id LEFT JOIN runs r ON r.id = m.run_id
  WHERE m.role = 'assistant' AND m.created_at >= ${from} AND m.created_at < ${to} AND (${accountId}::uuid IS NULL OR c.account_id = ${accountId}::uuid)
  UNION ALL
  SELECT cc.created_at, cc.model, cc.chat_id, 'compaction', c.account_id, r.sent_by_key_id,
    COALESCE((cc.usage->>'inputTokens')::bigint, 0), COALESCE((cc.usage->>'cachedInputTokens')::bigint, 0), COALESCE((cc.usage->>'outputTokens')::bigint, 0),
    COALESCE((cc.usage->>'reasoningTokens')::bigint, 0), COALESCE(cc.cost_micros, 0)
  FROM chat_compactions cc JOIN chats c ON c.id = cc.chat_id LEFT JOIN runs r ON r.id = cc.run_id
  WHERE cc.created_at >= ${from} AND cc.created_at < ${to} AND (${accountId}::uuid IS NULL OR c.account_id = ${accountId}::uuid)
  UNION ALL
  SELECT tc.created_at, tc.model, tc.chat_id, 'title', tc.account_id, NULL::uuid,
    COALESCE((tc.usage->>'inputTokens')::bigint, 0), COALESCE((tc.usage->>'cachedInputTokens')::bigint, 0), COALESCE((tc.usage->>'outputTokens')::bigint, 0),
    COALESCE((tc.usage->>'reasoningTokens')::bigint, 0), COALESCE(tc.cost_micros, 0)
  FROM title_calls tc
  WHERE tc.created_at >= ${from} AND tc.created_at < ${to} AND (${accountId}::uuid IS NULL OR tc.account_id = ${accountId}::uuid)`;

/** The report of one account (`accountId`), or of every account (null: the admin report). */
export async function usageReport(db: Db, accountId: string | null, groupBy: ReportGroup, from: Date, to: Date): Promise<UsageReport> {
  const rows = await db.$queryRaw<Row[]>`
    WITH u AS (${usageRows(accountId, from, to)})
    SELECT ${KEY[groupBy]} AS key, sum(u.input)::bigint AS input, sum(u.cached)::bigint AS cached, sum(u.output)::bigint AS output,
      sum(u.reasoning)::bigint AS reasoning, sum(u.cost)::bigint AS cost
    FROM u JOIN accounts a ON a.id = u.account_id
    GROUP BY 1 ORDER BY 1`;
  return {
    from: from.toISOString(),
    to: to.toISOString(),
    groupBy,
    rows: rows.map(
      (row) =>
        ({
          [groupBy]: row.key,
          inputTokens: Number(row.input),
          cachedInputTokens: Number(row.cached),
          outputTokens: Number(row.output),
          reasoningTokens: Number(row.reasoning),
          costMicros: Number(row.cost),
        }) as ReportRow,
    ),
  };
}

const csvCell = (value: string | number) => {
  const text = String(value);
  // A cell a spreadsheet would run as a formula is quoted with a leading apostrophe.
  const safe = /^[=+\-@\t\r]/.test(text) && typeof value === 'string' ? `'${text}` : text;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
};

/** The same rows as CSV, with a header. */
export function reportCsv(report: UsageReport): string {
  const columns = [report.groupBy, 'inputTokens', 'cachedInputTokens', 'outputTokens', 'reasoningTokens', 'costMicros'];
  return [columns.join(','), ...report.rows.map((row) => columns.map((column) => csvCell(row[column] as string | number)).join(','))].join('\n') + '\n';
}

export type DayModelRow = {
  day: string;
  model: string;
  inputTokens: number;
  cachedInputTokens: number;
  outputTokens: number;
  reasoningTokens: number;
  costMicros: number;
};

/** Spend per UTC day and model over the period (the admin usage page's chart and table); one account's, or every account's (null). */
export async function usageByDayAndModel(db: Db, accountId: string | null, from: Date, to: Date): Promise<DayModelRow[]> {
  const rows = await db.$queryRaw<(Row & { model: string })[]>`
    WITH u AS (${usageRows(accountId, from, to)})
    SELECT ${KEY.day} AS key, ${KEY.model} AS model, sum(u.input)::bigint AS input, sum(u.cached)::bigint AS cached, sum(u.output)::bigint AS output,
      sum(u.reasoning)::bigint AS reasoning, sum(u.cost)::bigint AS cost
    FROM u GROUP BY 1, 2 ORDER BY 1, 2`;
  return rows.map((row) => ({
    day: row.key,
    model: row.model,
    inputTokens: Number(row.input),
    cachedInputTokens: Number(row.cached),
    outputTokens: Number(row.output),
    reasoningTokens: Number(row.reasoning),
    costMicros: Number(row.cost),
  }));
}
