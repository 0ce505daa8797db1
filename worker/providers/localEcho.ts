import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ModelProvider, ProviderRequest, ProviderResult } from './types.js';

const words = (text: string) => text.match(/\S+\s*/g) ?? [];

/** `local/echo`: streams back the last user message word by word, with token usage. Needs nothing. */
export class LocalEchoProvider implements ModelProvider {
  constructor(private readonly delayMs: number) {}

  async stream(request: ProviderRequest, onText: (text: string) => void): Promise<ProviderResult> {
    const lastUser = [...request.messages].reverse().find((message) => message.role === 'user');
    const output = words(lastUser?.content ?? '');
    const limit = request.maxOutputTokens ?? Infinity;
    let emitted = 0;
    for (const word of output) {
      if (emitted >= limit) break;
      request.signal.throwIfAborted();
      if (this.delayMs > 0) await sleep(this.delayMs, undefined, { signal: request.signal });
      onText(word);
      emitted++;
    }
    const inputTokens = request.messages.reduce((sum, message) => sum + words(message.content).length, words(request.system ?? '').length);
    return {
      usage: { inputTokens, outputTokens: emitted, cachedInputTokens: 0, reasoningTokens: 0, totalTokens: inputTokens + emitted },
      providerResponseId: `echo-${randomUUID()}`,
      finishReason: emitted < output.length ? 'length' : 'stop',
    };
  }
}
