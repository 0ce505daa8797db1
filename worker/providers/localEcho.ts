import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { attachmentName, toolResultText, type ModelMessage, type ModelProvider, type ProviderRequest, type ProviderResult, type StepSink } from './types.js';

const words = (text: string) => text.match(/\S+\s*/g) ?? [];

/** `call <toolName> <json input>`, one per line: the tool calls local/echo makes when the run has tools. */
const CALL_LINE = /^call\s+([A-Za-z0-9_-]{1,64})\s*(.*)$/;

const messageText = (message: ModelMessage): string => (message.role === 'tool' ? message.results.map(toolResultText).join('\n') : message.content);

/**
 * `local/echo`: streams back the last user message word by word, with token usage. Needs nothing.
 * With tools, a last user message of `call <toolName> <json>` lines calls those tools (in
 * parallel); once their results are in, it answers with the results as text. Lines reading `then`
 * split the calls into steps: step k makes the k-th group's calls, and the step after the last
 * group answers.
 */
export class LocalEchoProvider implements ModelProvider {
  constructor(private readonly delayMs: number) {}

  async stream(request: ProviderRequest, sink: StepSink): Promise<ProviderResult> {
    const last = request.messages[request.messages.length - 1];
    const lastUser = request.messages.findLastIndex((message) => message.role === 'user');
    const stepsTaken = request.messages.slice(lastUser + 1).filter((message) => message.role === 'tool').length;
    const userText = lastUser >= 0 ? (request.messages[lastUser] as { content: string }).content : '';
    const calls = request.tools.length ? (this.plannedSteps(userText)[stepsTaken] ?? []) : [];
    const answer = calls.length ? '' : last?.role === 'tool' ? messageText(last) : this.lastUserText(request.messages);
    const output = words(answer);
    const limit = request.maxOutputTokens ?? Infinity;
    // Its input is counted before the first word, its output word by word: a call cut short is charged what it used.
    const inputTokens = request.messages.reduce((sum, message) => sum + words(messageText(message)).length, words(request.system ?? '').length);
    sink.usage?.({ inputTokens });
    let emitted = 0;
    for (const word of output) {
      if (emitted >= limit) break;
      request.signal.throwIfAborted();
      if (this.delayMs > 0) await sleep(this.delayMs, undefined, { signal: request.signal });
      sink.text(word);
      emitted++;
      sink.usage?.({ inputTokens, outputTokens: emitted });
    }
    for (const call of calls) {
      sink.toolInputStart(call.toolCallId, call.toolName);
      sink.toolInputDelta(call.toolCallId, call.rawInput);
    }
    const outputTokens = emitted + calls.length;
    return {
      usage: { inputTokens, outputTokens, cachedInputTokens: 0, reasoningTokens: 0, totalTokens: inputTokens + outputTokens },
      providerResponseId: `echo-${randomUUID()}`,
      finishReason: calls.length ? 'tool_calls' : emitted < output.length ? 'length' : 'stop',
      toolCalls: calls,
    };
  }

  /** The last user message back: a line per attachment (`[file <filename> <mediaType> <sizeBytes> <sha256>]`), then its text. */
  private lastUserText(messages: ModelMessage[]): string {
    const lastUser = [...messages].reverse().find((message) => message.role === 'user');
    if (lastUser?.role !== 'user') return '';
    const lines = (lastUser.attachments ?? []).map((a) =>
      a.missing ? `[file ${attachmentName(a)} ${a.mediaType} deleted]` : `[file ${attachmentName(a)} ${a.mediaType} ${a.sizeBytes} ${a.sha256}]`,
    );
    return [...lines, ...(lastUser.content ? [lastUser.content] : [])].join('\n');
  }

  /** The `call` lines of the message, grouped into steps by `then` lines; none unless every line is one or the other. */
  private plannedSteps(text: string) {
    const steps: { toolCallId: string; toolName: string; rawInput: string }[][] = [[]];
    for (const line of text
      .trim()
      .split('\n')
      .map((l) => l.trim())) {
      if (line === 'then') {
        steps.push([]);
        continue;
      }
      const match = CALL_LINE.exec(line);
      if (!match) return [];
      steps.at(-1)!.push({ toolCallId: `call_${randomUUID()}`, toolName: match[1]!, rawInput: match[2]!.trim() || '{}' });
    }
    return steps.filter((step) => step.length > 0);
  }
}
