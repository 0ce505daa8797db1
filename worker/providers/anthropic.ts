import Anthropic from '@anthropic-ai/sdk';
import { emptyUsage } from '../../shared/models.js';
import { providerStreamIncomplete, providerTimeout, withIdleTimeout } from './providerErrors.js';
import { fromSdkError } from './sdkErrors.js';
import type { ModelProvider, ProviderRequest, ProviderResult } from './types.js';

const DEFAULT_MAX_TOKENS = 4096;

/** `anthropic/<model>`: the Messages API with streaming, through the official SDK. */
export class AnthropicProvider implements ModelProvider {
  private readonly client: Anthropic;

  constructor(
    opts: { apiKey: string; baseURL?: string; timeoutMs: number },
    private readonly idleTimeoutMs: number,
  ) {
    this.client = new Anthropic({ apiKey: opts.apiKey, baseURL: opts.baseURL, timeout: opts.timeoutMs, maxRetries: 0 });
  }

  async stream(request: ProviderRequest, onText: (text: string) => void): Promise<ProviderResult> {
    const idle = new AbortController();
    const signal = AbortSignal.any([request.signal, idle.signal]);
    // Anthropic takes the system prompt apart from the turns.
    const system = [request.system, ...request.messages.filter((m) => m.role === 'system').map((m) => m.content)].filter(Boolean).join('\n\n');
    const messages = request.messages
      .filter((message) => message.role !== 'system')
      .map((message) => ({ role: message.role as 'user' | 'assistant', content: message.content }));
    const usage = emptyUsage();
    let providerResponseId: string | null = null;
    let finishReason: string | null = null;
    let receivedAny = false;
    let stopped = false;
    try {
      const stream = await this.client.messages.create(
        {
          model: request.model.name,
          max_tokens: request.maxOutputTokens ?? DEFAULT_MAX_TOKENS,
          messages,
          ...(system ? { system } : {}),
          stream: true,
        },
        { signal },
      );
      for await (const event of withIdleTimeout(
        stream,
        this.idleTimeoutMs,
        () => idle.abort(),
        () => providerTimeout('Anthropic', this.idleTimeoutMs),
      )) {
        receivedAny = true;
        switch (event.type) {
          case 'message_start': {
            providerResponseId = event.message.id;
            const start = event.message.usage;
            const cacheRead = start.cache_read_input_tokens ?? 0;
            usage.inputTokens = start.input_tokens + cacheRead + (start.cache_creation_input_tokens ?? 0);
            usage.cachedInputTokens = cacheRead;
            usage.outputTokens = start.output_tokens;
            break;
          }
          case 'content_block_delta':
            if (event.delta.type === 'text_delta') onText(event.delta.text);
            break;
          case 'message_delta':
            usage.outputTokens = event.usage.output_tokens;
            finishReason = event.delta.stop_reason ?? finishReason;
            break;
          case 'message_stop':
            stopped = true;
            break;
        }
      }
    } catch (err) {
      if (idle.signal.aborted && !request.signal.aborted) throw providerTimeout('Anthropic', this.idleTimeoutMs);
      throw fromSdkError('Anthropic', err, request.signal, receivedAny);
    }
    if (!stopped) throw providerStreamIncomplete('Anthropic');
    usage.totalTokens = usage.inputTokens + usage.outputTokens;
    return { usage, providerResponseId, finishReason: finishReason ?? 'stop' };
  }
}
