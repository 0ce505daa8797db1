/** A span of time as operators write it: `30s`, `15m`, `2h`, `7d` (the CLI's --since, the admin API's since/until). */
export const DURATION_PATTERN = /^(\d{1,9})\s*(s|m|h|d)$/;

const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** The duration in milliseconds, or null when `text` is not one. */
export function durationMs(text: string): number | null {
  const match = DURATION_PATTERN.exec(text.trim());
  return match ? Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS] : null;
}

/** A point in time given as an ISO timestamp, or as a duration back from `now` (`2h` = two hours ago). */
export function pointInTime(text: string, now = Date.now()): Date {
  const ago = durationMs(text);
  return ago === null ? new Date(text) : new Date(now - ago);
}
