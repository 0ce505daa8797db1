import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { toolResultText, type ModelMessage, type ModelProvider, type ProviderRequest, type ProviderResult, type StepSink } from './types.js';

const words = (text: string) => text.match(/\S+\s*/g) ?? [];

/** `call <toolName> <json input>`, one per line: the tool calls local/echo makes when the run has tools. */
const CALL_LINE = /^call\s+([A-Za-z0-9_-]{1,64})\s*(.*)$/;

const messageText = (message: ModelMessage): string => (message.role === 'tool' ? message.results.map(toolResultText).join('\n') : message.content);

/**
 * `local/echo`: streams back the last user message word by word, with token usage. Needs nothing.
 * With tools, a last user message of `call <toolName> <json>` lines calls those tools (in
 * parallel); once their results are in, it answers with the results as text.
 */
export class LocalEchoProvider implements ModelProvider {
  constructor(private readonly delayMs: number) {}

  async stream(request: ProviderRequest, sink: StepSink): Promise<ProviderResult> {
    const last = request.messages[request.messages.length - 1];
    const calls = last?.role === 'user' && request.tools.length ? this.plannedCalls(last.content) : [];
    const answer = last?.role === 'tool' ? messageText(last) : calls.length ? '' : this.lastUserText(request.messages);
    const output = words(answer);
    const limit = request.maxOutputTokens ?? Infinity;
    let emitted = 0;
    for (const word of output) {
      if (emitted >= limit) break;
      request.signal.throwIfAborted();
      if (this.delayMs > 0) await sleep(this.delayMs, undefined, { signal: request.signal });
      sink.text(word);
      emitted++;
    }
    for (const call of calls) {
      sink.toolInputStart(call.toolCallId, call.toolName);
      sink.toolInputDelta(call.toolCallId, call.rawInput);
    }
    const inputTokens = request.messages.reduce((sum, message) => sum + words(messageText(message)).length, words(request.system ?? '').length);
    const outputTokens = emitted + calls.length;
    return {
      usage: { inputTokens, outputTokens, cachedInputTokens: 0, reasoningTokens: 0, totalTokens: inputTokens + outputTokens },
      providerResponseId: `echo-${randomUUID()}`,
      finishReason: calls.length ? 'tool_calls' : emitted < output.length ? 'length' : 'stop',
      toolCalls: calls,
    };
  }

  private lastUserText(messages: ModelMessage[]): string {
    const lastUser = [...messages].reverse().find((message) => message.role === 'user');
    return lastUser?.role === 'user' ? lastUser.content : '';
  }

  private plannedCalls(text: string) {
    const lines = text.trim().split('\n');
    const calls = lines.map((line) => CALL_LINE.exec(line.trim()));
    if (calls.some((match) => !match)) return [];
    return calls.map((match) => ({ toolCallId: `call_${randomUUID()}`, toolName: match![1]!, rawInput: match![2]!.trim() || '{}' }));
  }
}
