import OpenAI from 'openai';
import { emptyUsage } from '../../shared/models.js';
import { providerStreamIncomplete, providerTimeout, withIdleTimeout } from './providerErrors.js';
import { fromSdkError } from './sdkErrors.js';
import type { ModelProvider, ProviderRequest, ProviderResult } from './types.js';

/** `openai/<model>`: Chat Completions streaming with usage, through the official SDK. */
export class OpenAIProvider implements ModelProvider {
  private readonly client: OpenAI;

  constructor(
    opts: { apiKey: string; baseURL?: string; timeoutMs: number },
    private readonly idleTimeoutMs: number,
  ) {
    // Retries belong to the run queue (visible attempts with backoff), not to the SDK.
    this.client = new OpenAI({ apiKey: opts.apiKey, baseURL: opts.baseURL, timeout: opts.timeoutMs, maxRetries: 0 });
  }

  async stream(request: ProviderRequest, onText: (text: string) => void): Promise<ProviderResult> {
    const idle = new AbortController();
    const signal = AbortSignal.any([request.signal, idle.signal]);
    const messages = [
      ...(request.system ? [{ role: 'system' as const, content: request.system }] : []),
      ...request.messages.map((message) => ({ role: message.role, content: message.content })),
    ];
    const usage = emptyUsage();
    let providerResponseId: string | null = null;
    let finishReason: string | null = null;
    let receivedAny = false;
    try {
      const stream = await this.client.chat.completions.create(
        {
          model: request.model.name,
          messages,
          stream: true,
          stream_options: { include_usage: true },
          ...(request.maxOutputTokens ? { max_completion_tokens: request.maxOutputTokens } : {}),
        },
        { signal },
      );
      for await (const chunk of withIdleTimeout(
        stream,
        this.idleTimeoutMs,
        () => idle.abort(),
        () => providerTimeout('OpenAI', this.idleTimeoutMs),
      )) {
        receivedAny = true;
        providerResponseId ??= chunk.id ?? null;
        const choice = chunk.choices[0];
        if (choice?.delta?.content) onText(choice.delta.content);
        if (choice?.finish_reason) finishReason = choice.finish_reason;
        if (chunk.usage) {
          usage.inputTokens = chunk.usage.prompt_tokens;
          usage.outputTokens = chunk.usage.completion_tokens;
          usage.cachedInputTokens = chunk.usage.prompt_tokens_details?.cached_tokens ?? 0;
          usage.reasoningTokens = chunk.usage.completion_tokens_details?.reasoning_tokens ?? 0;
          usage.totalTokens = chunk.usage.total_tokens;
        }
      }
    } catch (err) {
      if (idle.signal.aborted && !request.signal.aborted) throw providerTimeout('OpenAI', this.idleTimeoutMs);
      throw fromSdkError('OpenAI', err, request.signal, receivedAny);
    }
    if (!finishReason) throw providerStreamIncomplete('OpenAI');
    return { usage, providerResponseId, finishReason };
  }
}
