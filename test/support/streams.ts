import type { RedisClient } from '../../shared/infra/redis.js';
import { runEventKeys } from '../../shared/stream/events.js';

export type StoredEvent = { id: string; data: string; chunk: { type: string; [key: string]: unknown } | null };

/** The run's event stream as stored in Redis, oldest first. */
export async function storedEvents(redis: RedisClient, prefix: string, runId: string): Promise<StoredEvent[]> {
  const rows = await redis.xrange(runEventKeys(prefix, runId).stream, '-', '+');
  return rows.map(([id, fields]) => {
    const data = fields[1] ?? '';
    return { id, data, chunk: data === '[DONE]' ? null : (JSON.parse(data) as StoredEvent['chunk']) };
  });
}

export const chunkTypes = (events: StoredEvent[]) => events.map((event) => event.chunk?.type ?? '[DONE]');

/** The text an attempt-aware client shows: deltas after the last data-attempt. */
export function finalText(events: StoredEvent[]): string {
  let text = '';
  for (const { chunk } of events) {
    if (chunk?.type === 'data-attempt') text = '';
    if (chunk?.type === 'text-delta') text += chunk.delta as string;
  }
  return text;
}
