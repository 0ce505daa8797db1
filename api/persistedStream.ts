import type { Db } from '../shared/db.js';
import { DONE, type UiChunk } from '../shared/events.js';
import { textOfParts, type MessagePart } from '../shared/messageParts.js';
import type { StreamEntry } from './streamHub.js';

/**
 * The event stream of a finished run rebuilt from Postgres, for when its Redis stream has expired.
 * Ids are `0-1`, `0-2`, ... so Last-Event-ID resumption works the same way.
 */
export async function persistedRunEvents(
  db: Db,
  run: { runId: string; status: string; attempt: number; error: { code: string; message: string; retryable: boolean } | null },
): Promise<StreamEntry[]> {
  const message = await db.message.findFirst({
    where: { runId: run.runId, role: 'assistant' },
    orderBy: { seq: 'desc' },
    select: { parts: true, attempt: true },
  });
  const textId = `text-${message?.attempt ?? run.attempt}`;
  const chunks: UiChunk[] = [{ type: 'start', messageId: `${run.runId}-${message?.attempt ?? run.attempt}` }, { type: 'start-step' }];
  const text = textOfParts((message?.parts ?? []) as MessagePart[]);
  if (message) {
    chunks.push({ type: 'text-start', id: textId });
    if (text) chunks.push({ type: 'text-delta', id: textId, delta: text });
    chunks.push({ type: 'text-end', id: textId });
  }
  chunks.push({ type: 'finish-step' });
  if (run.status === 'failed' && run.error) chunks.push({ type: 'error', errorText: `${run.error.code}: ${run.error.message}` });
  chunks.push({ type: 'data-run-status', data: { status: run.status, ...(run.error ? { error: run.error } : {}) } });
  chunks.push({ type: 'finish' });
  const entries = chunks.map((chunk, index) => ({ id: `0-${index + 1}`, data: JSON.stringify(chunk) }));
  entries.push({ id: `0-${entries.length + 1}`, data: DONE });
  return entries;
}

/** Stream ids compare as (milliseconds, sequence). */
export function isAfter(id: string, afterId: string): boolean {
  const [ms, seq] = id.split('-').map(BigInt) as [bigint, bigint];
  const [afterMs, afterSeq] = afterId.split('-').map(BigInt) as [bigint, bigint];
  return ms > afterMs || (ms === afterMs && seq > afterSeq);
}
