import type { UiChunk } from './events.js';
import { isToolPart, toolNameOf, type MessagePart, type ToolPart } from './messageParts.js';

/**
 * Stored message parts as the stream chunks that build them (`readUIMessageStream` turns these
 * chunks back into the same parts): for a step persisted earlier and sent again, and for the
 * persisted replay of a run whose Redis stream has expired. `finish-step` closes every step but,
 * with `openLastStep`, the last (its calls are still running).
 */
export function chunksOfParts(parts: readonly MessagePart[], textIdPrefix: string, opts: { openLastStep?: boolean } = {}): UiChunk[] {
  const chunks: UiChunk[] = [];
  let step = -1;
  const startStep = () => {
    if (step >= 0) chunks.push({ type: 'finish-step' });
    step++;
    chunks.push({ type: 'start-step' });
  };
  for (const [index, part] of parts.entries()) {
    if (part.type === 'step-start') {
      startStep();
      continue;
    }
    if (part.type === 'data-compaction') {
      chunks.push({ type: part.type, id: part.id, data: part.data });
      continue;
    }
    if (step < 0) startStep();
    if (part.type === 'text') {
      const id = `${textIdPrefix}-${step}-${index}`;
      chunks.push({ type: 'text-start', id }, { type: 'text-delta', id, delta: part.text }, { type: 'text-end', id });
    } else if (isToolPart(part)) chunks.push(...toolChunks(part));
  }
  if (step >= 0 && !opts.openLastStep) chunks.push({ type: 'finish-step' });
  return chunks;
}

/** The chunks that build a tool part: its input chunk, then its output chunk once it has a result. */
export function toolChunks(part: ToolPart): UiChunk[] {
  const { toolCallId } = part;
  const toolName = toolNameOf(part);
  if (part.state === 'output-error' && part.input === undefined && part.rawInput !== undefined) {
    return [{ type: 'tool-input-error', toolCallId, toolName, input: part.rawInput, errorText: part.errorText ?? '' }];
  }
  const input: UiChunk = { type: 'tool-input-available', toolCallId, toolName, input: part.input };
  switch (part.state) {
    case 'output-available':
      return [input, { type: 'tool-output-available', toolCallId, output: part.output }];
    case 'output-error':
      return [input, { type: 'tool-output-error', toolCallId, errorText: part.errorText ?? '' }];
    case 'output-denied':
      return [input, { type: 'tool-output-denied', toolCallId }];
    default:
      return [input];
  }
}
