import type { ModelRef, Usage } from '../../shared/agent/models.js';
import { kindOf, type FileKind } from '../../shared/files/fileTypes.js';

/** A tool call as the model made it: `input` is the parsed JSON (undefined when `rawInput` is not JSON). */
export type ToolCall = { toolCallId: string; toolName: string; input: unknown; rawInput: string };

/** What a tool call gave back to the model: an output, or an error text (`isError`). */
export type ToolResult = { toolCallId: string; toolName: string; output: unknown; isError: boolean };

/**
 * A file a user message carries (SPEC section 20): named by the stored part; its size, digest and
 * bytes filled in by worker/agent/attachments.ts just before the call (`missing`: deleted since).
 */
export type Attachment = {
  fileId: string;
  mediaType: string;
  filename: string | null;
  sizeBytes?: number;
  sha256?: string;
  data?: Buffer;
  missing?: true;
};

/** The conversation in a provider-neutral form; each provider maps it to its wire format. */
export type ModelMessage =
  | { role: 'system'; content: string }
  | { role: 'user'; content: string; attachments?: Attachment[] }
  | { role: 'assistant'; content: string; toolCalls: ToolCall[] }
  | { role: 'tool'; results: ToolResult[] };

/** A tool as the model is offered it (what runs it is the worker's business, not the provider's). */
export type ModelTool = { name: string; description?: string; inputSchema: Record<string, unknown> };

export type ProviderRequest = {
  model: ModelRef;
  messages: ModelMessage[];
  tools: ModelTool[];
  system?: string;
  maxOutputTokens?: number;
  signal: AbortSignal;
};

/** Where a provider sends what the model produces, as it produces it. */
export type StepSink = {
  text(delta: string): void;
  toolInputStart(toolCallId: string, toolName: string): void;
  toolInputDelta(toolCallId: string, delta: string): void;
  /**
   * The provider's own token counts as far as it sent them (Anthropic's at the message's start,
   * OpenAI's at its end; local/echo's as it goes): what a call cut short is charged when it has them.
   */
  usage?(counted: Partial<Usage>): void;
};

/** One model call: its usage, and the tool calls it made (complete, in order). */
export type ProviderResult = {
  usage: Usage;
  providerResponseId: string | null;
  finishReason: string;
  toolCalls: { toolCallId: string; toolName: string; rawInput: string }[];
};

/** One model provider: streams one model call into `sink`. */
export interface ModelProvider {
  stream(request: ProviderRequest, sink: StepSink): Promise<ProviderResult>;
}

/** A tool result as text for a provider that takes strings: the output's JSON, or `{"error": ...}`. */
export const toolResultText = (result: ToolResult): string =>
  result.isError ? JSON.stringify({ error: String(result.output) }) : typeof result.output === 'string' ? result.output : JSON.stringify(result.output ?? null);

/** How an attachment is named in text (local/echo's answer, a deleted file's stand-in, compaction transcripts). */
export const attachmentName = (attachment: Attachment): string => attachment.filename ?? attachment.fileId;

/** How a provider sends an attachment: an image, a PDF, or text (a text file, and a file deleted since or not read). */
export const attachmentKind = (attachment: Attachment): FileKind => (attachment.missing || !attachment.data ? 'text' : kindOf(attachment.mediaType));

/** A text attachment's content as the model reads it: its name, then the text. */
export const attachmentText = (attachment: Attachment): string =>
  attachment.missing || !attachment.data
    ? `[attachment ${attachmentName(attachment)} (${attachment.mediaType}) was deleted]`
    : `[${attachmentName(attachment)}]\n${attachment.data.toString('utf8')}`;
