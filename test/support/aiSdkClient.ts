import { parseJsonEventStream } from '@ai-sdk/provider-utils';
import { readUIMessageStream, uiMessageChunkSchema, type UIMessage, type UIMessageChunk } from 'ai';

/**
 * Reads a run's stream the way the AI SDK's chat transport does: parseJsonEventStream with the
 * SDK's own chunk schema (so an invalid chunk fails the test), then readUIMessageStream. Each
 * attempt opens with a new `start`, on which readUIMessageStream starts the message over, so the
 * final message is the last attempt's (data-attempt and data-run-status are transient, never parts).
 */
export async function readWithAiSdk(
  url: string,
  headers: Record<string, string>,
): Promise<{ text: string; chunks: UIMessageChunk[]; errors: unknown[]; message: UIMessage | undefined }> {
  const res = await fetch(url, { headers });
  if (!res.ok || !res.body) throw new Error(`stream answered ${res.status}`);
  const chunks: UIMessageChunk[] = [];
  const errors: unknown[] = [];
  const parsed = parseJsonEventStream({ stream: res.body, schema: uiMessageChunkSchema }).pipeThrough(
    new TransformStream({
      transform(result, controller) {
        if (!result.success) throw result.error;
        chunks.push(result.value);
        controller.enqueue(result.value);
      },
    }),
  );
  let message: UIMessage | undefined;
  for await (const snapshot of readUIMessageStream({ stream: parsed, onError: (error) => errors.push(error) })) message = snapshot;
  const text = (message?.parts ?? [])
    .filter((part) => part.type === 'text')
    .map((part) => (part as { text: string }).text)
    .join('');
  return { text, chunks, errors, message };
}

/**
 * A message's parts as plain JSON, for comparing the AI SDK's message with the persisted one: keys
 * holding undefined dropped, and a text part's streaming `state` (the stream's, not the message's) left out.
 */
export function comparableParts(parts: readonly unknown[]): unknown[] {
  return JSON.parse(JSON.stringify(parts)).map((part: Record<string, unknown>) => {
    if (part.type !== 'text') return part;
    const { state: _state, providerMetadata: _meta, ...rest } = part;
    return rest;
  });
}
