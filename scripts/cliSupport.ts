import { durationMs } from '../shared/infra/durations.js';
/** Parses a duration like 30m, 2h, 1d, 90s into milliseconds. */
export function parseDuration(text: string): number {
  const ms = durationMs(text);
  if (ms === null) throw new UsageError(`"${text}" is not a duration (use e.g. 30m, 2h, 1d)`);
  return ms;
}

/** A mistake in how the command was called: exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export type Output = { json: boolean };

/** Prints a result: JSON for scripts (--json), otherwise the human form. */
export function print(output: Output, value: unknown, human: () => string): void {
  process.stdout.write(output.json ? `${JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? Number(v) : v), 2)}\n` : `${human()}\n`);
}

export function table(rows: Record<string, unknown>[], columns: string[]): string {
  if (rows.length === 0) return '(none)';
  const cell = (value: unknown) => (value instanceof Date ? value.toISOString() : value === null || value === undefined ? '-' : String(value));
  const widths = columns.map((column) => Math.max(column.length, ...rows.map((row) => cell(row[column]).length)));
  const line = (values: string[]) =>
    values
      .map((value, i) => value.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(columns), ...rows.map((row) => line(columns.map((column) => cell(row[column]))))].join('\n');
}
