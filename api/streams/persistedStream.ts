import type { Db } from '../../shared/infra/db.js';
import { closingChunks, DONE, type UiChunk } from '../../shared/stream/events.js';
import type { MessagePart } from '../../shared/stream/messageParts.js';
import { chunksOfParts } from '../../shared/stream/partChunks.js';
import { isAfter, type StreamEntry } from './streamIds.js';

type FinishedRun = Parameters<typeof closingChunks>[0] & { runId: string; attempt: number };

/**
 * The events of a finished run after `afterId`, rebuilt from Postgres for when its Redis stream has
 * expired. Ids are `0-1`, `0-2`, ... so Last-Event-ID resumption works the same way. A client
 * resuming from an id of the expired Redis stream saw an unknown part of the run: it gets the run's
 * closing events (its outcome, `finish`, [DONE]) so its stream ends; the whole text is in the
 * chat's messages.
 */
export async function persistedRunEvents(db: Db, run: FinishedRun, afterId: string): Promise<StreamEntry[]> {
  const message = await db.message.findFirst({
    where: { runId: run.runId, role: 'assistant' },
    orderBy: { seq: 'desc' },
    select: { parts: true, attempt: true },
  });
  const attempt = message?.attempt ?? run.attempt;
  const chunks: UiChunk[] = [
    { type: 'start', messageId: `${run.runId}-${attempt}` },
    ...chunksOfParts((message?.parts ?? []) as MessagePart[], `text-${attempt}`),
  ];
  const closingFrom = chunks.length;
  chunks.push(...closingChunks(run));
  const entries = [...chunks.map((chunk) => JSON.stringify(chunk)), DONE].map((data, index) => ({ id: `0-${index + 1}`, data }));
  const fromExpiredStream = !afterId.startsWith('0-');
  return fromExpiredStream ? entries.slice(closingFrom) : entries.filter((entry) => isAfter(entry.id, afterId));
}
