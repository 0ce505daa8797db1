import type { MessagePart, ToolPart } from '../stream/messageParts.js';
import type { Usage } from './models.js';

/**
 * A run's durable steps (SPEC section 9), as the worker persists them in run_steps and the api
 * reads them back (pending calls of a parked run, a cancel that closes them): shared by both tiers.
 */

/** What a tool call gave the model: an output, an error text, or the caller's denial. */
export type ToolOutcome = { output: unknown } | { error: string } | { denied: true; reason?: string };

/** A tool call of a step as persisted: the model's call, and the key every delivery of it carries. */
export type StepToolCall = {
  toolCallId: string;
  toolName: string;
  /** The parsed input (undefined when the model's input was not JSON). */
  input?: unknown;
  rawInput: string;
  /** Why the input was not used (not JSON, no such tool, schema mismatch): the call is not executed. */
  inputError?: string;
  /** `server`: a worker calls the tool's url; `client`: the caller runs it and posts the result. */
  kind: 'server' | 'client';
  /** A server tool with requireApproval: it runs only once the caller approves the call. */
  needsApproval?: boolean;
  /** `webhook-id` / `Idempotency-Key` of every delivery of this call, stable across retries and attempts. */
  idempotencyKey: string;
};

export type PersistedStep = {
  step: number;
  text: string;
  toolCalls: StepToolCall[];
  results: Record<string, ToolOutcome>;
  approvals: Record<string, { approved: boolean; reason?: string }>;
  usage: Usage | null;
  providerResponseId: string | null;
};

/** A call the run waits on: a client tool's result, or the approval of a server tool. */
export type PendingToolCall = { toolCallId: string; toolName: string; input: unknown; kind: 'result' | 'approval' };

/** The calls of a step that the caller must answer before the run can go on. */
export function pendingCalls(step: PersistedStep): PendingToolCall[] {
  return step.toolCalls.flatMap((call): PendingToolCall[] => {
    if (call.inputError || call.toolCallId in step.results) return [];
    if (call.kind === 'client') return [{ toolCallId: call.toolCallId, toolName: call.toolName, input: call.input, kind: 'result' }];
    if (call.needsApproval && !step.approvals[call.toolCallId])
      return [{ toolCallId: call.toolCallId, toolName: call.toolName, input: call.input, kind: 'approval' }];
    return [];
  });
}

/** One tool call as a UI message part: its input (or why it was unusable) and, once known, its result. */
export function toolPartOf(call: StepToolCall, result: ToolOutcome | undefined): ToolPart {
  const base = { type: `tool-${call.toolName}` as const, toolCallId: call.toolCallId };
  if (call.inputError) return { ...base, state: 'output-error', rawInput: call.input ?? call.rawInput, errorText: call.inputError };
  if (!result) return { ...base, state: 'input-available', input: call.input };
  if ('denied' in result) return { ...base, state: 'output-denied', input: call.input };
  return 'error' in result
    ? { ...base, state: 'output-error', input: call.input, errorText: result.error }
    : { ...base, state: 'output-available', input: call.input, output: result.output };
}

/** A persisted step as UI message parts, as `readUIMessageStream` builds them from the step's chunks. */
export function stepParts(step: PersistedStep, missingResult?: string): MessagePart[] {
  const tools = step.toolCalls.map((call) => toolPartOf(call, step.results[call.toolCallId] ?? (missingResult ? { error: missingResult } : undefined)));
  return [{ type: 'step-start' }, ...(step.text ? [{ type: 'text' as const, text: step.text }] : []), ...tools];
}
