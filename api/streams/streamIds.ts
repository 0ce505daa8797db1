/** A run's stream entry as the api serves it: its SSE id and data. */
export type StreamEntry = { id: string; data: string };

/** Stream ids compare as (milliseconds, sequence). */
export function isAfter(id: string, afterId: string): boolean {
  const [ms, seq] = id.split('-').map(BigInt) as [bigint, bigint];
  const [afterMs, afterSeq] = afterId.split('-').map(BigInt) as [bigint, bigint];
  return ms > afterMs || (ms === afterMs && seq > afterSeq);
}
