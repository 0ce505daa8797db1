import { EventSourceParserStream, type EventSourceMessage } from 'eventsource-parser/stream';

export type SseEvent = { id: string | undefined; data: string };

/**
 * Reads an SSE response with eventsource-parser until the server closes it (or `until` says stop),
 * as a browser or the AI SDK would.
 */
export async function readSse(
  url: string,
  headers: Record<string, string>,
  opts: { until?: (event: SseEvent) => boolean; timeoutMs?: number; signal?: AbortSignal } = {},
) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), opts.timeoutMs ?? 20_000);
  opts.signal?.addEventListener('abort', () => controller.abort());
  const res = await fetch(url, { headers, signal: controller.signal });
  const events: SseEvent[] = [];
  try {
    if (!res.body) return { res, events };
    const stream = res.body.pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream());
    for await (const message of stream as unknown as AsyncIterable<EventSourceMessage>) {
      const event = { id: message.id, data: message.data };
      events.push(event);
      if (opts.until?.(event)) break;
    }
  } catch (err) {
    if (!controller.signal.aborted) throw err;
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
  return { res, events };
}

/** The text an attempt-aware client shows: deltas since the last data-attempt. */
export function assembledText(events: SseEvent[]): string {
  let text = '';
  for (const event of events) {
    if (event.data === '[DONE]') continue;
    const chunk = JSON.parse(event.data) as { type: string; delta?: string };
    if (chunk.type === 'data-attempt') text = '';
    if (chunk.type === 'text-delta') text += chunk.delta ?? '';
  }
  return text;
}
