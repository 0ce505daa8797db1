import OpenAI from 'openai';
import type { ChatCompletionContentPart, ChatCompletionMessageParam, ChatCompletionTool } from 'openai/resources/chat/completions';
import { emptyUsage } from '../../shared/agent/models.js';
import { providerStreamIncomplete, providerTimeout, withIdleTimeout } from './providerErrors.js';
import { fromSdkError } from './sdkErrors.js';
import {
  attachmentKind,
  attachmentName,
  attachmentText,
  toolResultText,
  type Attachment,
  type ModelMessage,
  type ModelProvider,
  type ModelTool,
  type ProviderRequest,
  type ProviderResult,
  type StepSink,
} from './types.js';

/** An attachment as a content part: images as image_url, PDFs as file parts, text (and a deleted file) as text — base64 data URLs. */
function attachmentPart(attachment: Attachment): ChatCompletionContentPart {
  const dataUrl = () => `data:${attachment.mediaType};base64,${attachment.data!.toString('base64')}`;
  switch (attachmentKind(attachment)) {
    case 'image':
      return { type: 'image_url', image_url: { url: dataUrl() } };
    case 'pdf':
      return { type: 'file', file: { filename: attachmentName(attachment), file_data: dataUrl() } };
    case 'text':
      return { type: 'text', text: attachmentText(attachment) };
  }
}

function toOpenAIMessages(messages: ModelMessage[]): ChatCompletionMessageParam[] {
  return messages.flatMap((message): ChatCompletionMessageParam[] => {
    switch (message.role) {
      case 'system':
        return [{ role: message.role, content: message.content }];
      case 'user':
        if (!message.attachments?.length) return [{ role: 'user', content: message.content }];
        return [
          {
            role: 'user',
            content: [...message.attachments.map(attachmentPart), ...(message.content ? [{ type: 'text' as const, text: message.content }] : [])],
          },
        ];
      case 'assistant':
        return [
          {
            role: 'assistant',
            content: message.content || null,
            ...(message.toolCalls.length
              ? {
                  tool_calls: message.toolCalls.map((call) => ({
                    id: call.toolCallId,
                    type: 'function' as const,
                    function: { name: call.toolName, arguments: call.rawInput },
                  })),
                }
              : {}),
          },
        ];
      case 'tool':
        return message.results.map((result) => ({ role: 'tool' as const, tool_call_id: result.toolCallId, content: toolResultText(result) }));
    }
  });
}

const toOpenAITools = (tools: ModelTool[]): ChatCompletionTool[] =>
  tools.map((tool) => ({
    type: 'function',
    function: { name: tool.name, ...(tool.description ? { description: tool.description } : {}), parameters: tool.inputSchema },
  }));

/** `openai/<model>`: Chat Completions streaming with usage and function tools, through the official SDK. */
export class OpenAIProvider implements ModelProvider {
  /** Whose key the client holds: a refused key's error names it. */
  private readonly whose: 'deployment' | 'account';
  private readonly client: OpenAI;

  constructor(
    opts: { apiKey: string; baseURL?: string; timeoutMs: number; whose?: 'deployment' | 'account' },
    private readonly idleTimeoutMs: number,
  ) {
    this.whose = opts.whose ?? 'deployment';
    // Retries belong to the run queue (visible attempts with backoff), not to the SDK.
    this.client = new OpenAI({ apiKey: opts.apiKey, baseURL: opts.baseURL, timeout: opts.timeoutMs, maxRetries: 0 });
  }

  async stream(request: ProviderRequest, sink: StepSink): Promise<ProviderResult> {
    const idle = new AbortController();
    const signal = AbortSignal.any([request.signal, idle.signal]);
    const messages = [...(request.system ? [{ role: 'system' as const, content: request.system }] : []), ...toOpenAIMessages(request.messages)];
    const usage = emptyUsage();
    let providerResponseId: string | null = null;
    let finishReason: string | null = null;
    let receivedAny = false;
    // Streamed tool calls arrive as fragments keyed by index; the id and name come with the first.
    const calls: { toolCallId: string; toolName: string; rawInput: string }[] = [];
    try {
      const stream = await this.client.chat.completions.create(
        {
          model: request.model.name,
          messages,
          stream: true,
          stream_options: { include_usage: true },
          ...(request.tools.length ? { tools: toOpenAITools(request.tools) } : {}),
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
        if (choice?.delta?.content) sink.text(choice.delta.content);
        for (const fragment of choice?.delta?.tool_calls ?? []) {
          let call = calls[fragment.index];
          if (!call) {
            call = { toolCallId: fragment.id ?? `call_${fragment.index}`, toolName: fragment.function?.name ?? '', rawInput: '' };
            calls[fragment.index] = call;
            sink.toolInputStart(call.toolCallId, call.toolName);
          }
          const args = fragment.function?.arguments;
          if (args) {
            call.rawInput += args;
            sink.toolInputDelta(call.toolCallId, args);
          }
        }
        if (choice?.finish_reason) finishReason = choice.finish_reason;
        if (chunk.usage) {
          usage.inputTokens = chunk.usage.prompt_tokens;
          usage.outputTokens = chunk.usage.completion_tokens;
          usage.cachedInputTokens = chunk.usage.prompt_tokens_details?.cached_tokens ?? 0;
          usage.reasoningTokens = chunk.usage.completion_tokens_details?.reasoning_tokens ?? 0;
          usage.totalTokens = chunk.usage.total_tokens;
          sink.usage?.({ ...usage });
        }
      }
    } catch (err) {
      if (idle.signal.aborted && !request.signal.aborted) throw providerTimeout('OpenAI', this.idleTimeoutMs);
      throw fromSdkError('OpenAI', err, request.signal, receivedAny, this.whose);
    }
    if (!finishReason) throw providerStreamIncomplete('OpenAI');
    return { usage, providerResponseId, finishReason, toolCalls: calls.filter(Boolean) };
  }
}
