/**
 * Stored message parts: the AI SDK's `UIMessage` parts, as the messages endpoint returns them and
 * as `readUIMessageStream` builds them from a run's stream. An assistant message holds one
 * `step-start` per step of the agent loop, the step's text, and its tool parts with their results.
 */
export type TextPart = { type: 'text'; text: string };
export type StepStartPart = { type: 'step-start' };
export type ToolPartState = 'input-available' | 'output-available' | 'output-error' | 'output-denied';
export type ToolPart = {
  type: `tool-${string}`;
  toolCallId: string;
  state: ToolPartState;
  input?: unknown;
  /** The model's input when it could not be used (not JSON, or not matching the schema). */
  rawInput?: unknown;
  output?: unknown;
  errorText?: string;
};
/** A compaction (SPEC section 13): the summary that replaced the chat's messages up to `throughMessageId` in later model calls. */
export type CompactionPart = {
  type: 'data-compaction';
  id: string;
  data: { summary: string; throughMessageId: string; inputTokensBefore: number };
};
/** An attachment of a user message (SPEC section 20), stored as `url: runyard:file/<fileId>` (shared/files/attachments.ts). */
export type FilePart = { type: 'file'; mediaType: string; url: string; filename?: string };
export type MessagePart = TextPart | StepStartPart | ToolPart | CompactionPart | FilePart;

export const isToolPart = (part: { type: string }): part is ToolPart => part.type.startsWith('tool-');
export const toolNameOf = (part: ToolPart): string => part.type.slice('tool-'.length);

/** A message's text: its text parts joined (other parts carry none). */
export const textOfParts = (parts: readonly { type: string; text?: string }[]): string =>
  parts
    .filter((part) => part.type === 'text')
    .map((part) => part.text ?? '')
    .join('');
