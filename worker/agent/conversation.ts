import { isToolPart, textOfParts, toolNameOf, type MessagePart, type ToolPart } from '../../shared/stream/messageParts.js';
import type { PersistedStep } from '../../shared/agent/steps.js';
import type { Usage } from '../../shared/agent/models.js';
import type { Attachment, ModelMessage, ToolCall, ToolResult } from '../providers/types.js';
import { fileIdOf } from '../../shared/files/attachments.js';

export type StoredMessage = { role: 'user' | 'assistant' | 'system'; parts: MessagePart[] };

/** A message of the chat as the claim reads it: its place (seq), its run, and (an answer's) last model call's input tokens. */
export type ChatMessage = StoredMessage & { id: string; seq: number; runId: string | null; contextTokens: number | null };

/** A compaction as persisted (chat_compactions): the summary stands in for the chat's messages up to throughSeq. */
export type PersistedCompaction = {
  runId: string;
  episode: number;
  beforeStep: number;
  summary: string;
  throughMessageId: string;
  throughSeq: number;
  inputTokensBefore: number;
  usage: Usage;
};

/**
 * The chat as a run's attempt reads it (SPEC section 13): the latest compaction, then the messages
 * after it split at this run's user message — what precedes it is what a compaction may summarise,
 * the run's own message and steps are kept as they are (so a tool call and its result are never
 * cut apart) — and how full the window was at the chat's last model call.
 */
export type ChatContext = {
  compaction: PersistedCompaction | null;
  earlier: ChatMessage[];
  /** `earlier` as the model reads it. */
  earlierModelMessages: ModelMessage[];
  current: ChatMessage[];
  lastInputTokens: number | null;
};

export function chatContextOf(runId: string, messages: ChatMessage[], compaction: PersistedCompaction | null, steps: PersistedStep[]): ChatContext {
  const runMessage = messages.findLastIndex((message) => message.runId === runId && message.role === 'user');
  const split = Math.max(0, runMessage);
  const lastAnswer = messages.findLast((message) => message.contextTokens !== null);
  const lastStep = steps.at(-1);
  const earlier = messages.slice(0, split);
  return {
    compaction,
    earlier,
    earlierModelMessages: toModelMessages(earlier),
    current: messages.slice(split),
    lastInputTokens: lastStep?.usage?.inputTokens ?? lastAnswer?.contextTokens ?? null,
  };
}

const DENIED = 'The user denied this tool call.';
/** The result a call of an earlier run gets when that run ended before it was answered: every provider wants each call answered. */
export const UNANSWERED_CALL = 'The run was interrupted before this tool call was answered.';

export const toolCallOfPart = (part: ToolPart): ToolCall => {
  const input = part.input ?? (typeof part.rawInput === 'string' ? undefined : part.rawInput);
  return {
    toolCallId: part.toolCallId,
    toolName: toolNameOf(part),
    input,
    rawInput: typeof part.rawInput === 'string' ? part.rawInput : JSON.stringify(input ?? {}),
  };
};

export const toolResultOfPart = (part: ToolPart): ToolResult | null => {
  const base = { toolCallId: part.toolCallId, toolName: toolNameOf(part) };
  switch (part.state) {
    case 'output-available':
      return { ...base, output: part.output, isError: false };
    case 'output-error':
      return { ...base, output: part.errorText ?? 'error', isError: true };
    case 'output-denied':
      return { ...base, output: DENIED, isError: true };
    default:
      return null;
  }
};

/**
 * The chat's stored messages as the model reads them: an assistant message becomes, for each of
 * its steps, the assistant's turn (text and tool calls) followed by the tools' results.
 */
export function toModelMessages(messages: readonly StoredMessage[]): ModelMessage[] {
  const out: ModelMessage[] = [];
  for (const message of messages) {
    if (message.role === 'user') {
      const attachments = attachmentsOf(message.parts);
      out.push({ role: 'user', content: textOfParts(message.parts), ...(attachments.length ? { attachments } : {}) });
      continue;
    }
    if (message.role !== 'assistant') {
      out.push({ role: message.role, content: textOfParts(message.parts) });
      continue;
    }
    for (const step of splitSteps(message.parts)) out.push(...stepMessages(step));
  }
  return out;
}

/** The files a user message carries, as the model call names them (their bytes come just before it is sent). */
const attachmentsOf = (parts: readonly MessagePart[]): Attachment[] =>
  parts.flatMap((part) => {
    if (part.type !== 'file') return [];
    const fileId = fileIdOf(part);
    return fileId ? [{ fileId, mediaType: part.mediaType, filename: part.filename ?? null }] : [];
  });

/** One step's parts as model messages: the assistant turn, then a tool turn if it called tools. */
export function stepMessages(parts: readonly MessagePart[]): ModelMessage[] {
  const tools = parts.filter(isToolPart);
  const content = textOfParts(parts);
  if (!content && tools.length === 0) return [];
  const results = tools.map(
    (part) => toolResultOfPart(part) ?? { toolCallId: part.toolCallId, toolName: toolNameOf(part), output: UNANSWERED_CALL, isError: true },
  );
  return [{ role: 'assistant', content, toolCalls: tools.map(toolCallOfPart) }, ...(results.length ? [{ role: 'tool' as const, results }] : [])];
}

/** An assistant message's parts, step by step (a message without step-start parts is one step). */
export function splitSteps(parts: readonly MessagePart[]): MessagePart[][] {
  const steps: MessagePart[][] = [];
  let current: MessagePart[] = [];
  for (const part of parts) {
    if (part.type === 'step-start') {
      if (current.length) steps.push(current);
      current = [];
    } else current.push(part);
  }
  if (current.length) steps.push(current);
  return steps;
}
