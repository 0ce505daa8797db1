import Anthropic from '@anthropic-ai/sdk';
import type { ContentBlockParam, MessageParam, Tool } from '@anthropic-ai/sdk/resources/messages';
import { emptyUsage } from '../../shared/agent/models.js';
import { providerStreamIncomplete, providerTimeout, withIdleTimeout } from './providerErrors.js';
import { fromSdkError } from './sdkErrors.js';
import {
  attachmentKind,
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

const DEFAULT_MAX_TOKENS = 4096;

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** An attachment as a content block: images as image blocks, PDFs as document blocks, text (and a deleted file) as text — base64. */
function attachmentBlock(attachment: Attachment): ContentBlockParam {
  switch (attachmentKind(attachment)) {
    case 'image':
      return {
        type: 'image',
        source: {
          type: 'base64',
          media_type: attachment.mediaType as 'image/png' | 'image/jpeg' | 'image/gif' | 'image/webp',
          data: attachment.data!.toString('base64'),
        },
      };
    case 'pdf':
      return { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: attachment.data!.toString('base64') } };
    case 'text':
      return { type: 'text', text: attachmentText(attachment) };
  }
}

/** The turns as Anthropic takes them: tool calls are `tool_use` blocks, their results `tool_result` blocks of the next user turn. */
function toAnthropicMessages(messages: ModelMessage[]): MessageParam[] {
  const out: MessageParam[] = [];
  for (const message of messages) {
    switch (message.role) {
      case 'system':
        break; // taken apart, with the system prompt
      case 'user':
        out.push({
          role: 'user',
          content: message.attachments?.length
            ? [...message.attachments.map(attachmentBlock), ...(message.content ? [{ type: 'text' as const, text: message.content }] : [])]
            : message.content,
        });
        break;
      case 'assistant':
        out.push({
          role: 'assistant',
          content: [
            ...(message.content ? [{ type: 'text' as const, text: message.content }] : []),
            ...message.toolCalls.map((call) => ({
              type: 'tool_use' as const,
              id: call.toolCallId,
              name: call.toolName,
              input: isObject(call.input) ? call.input : {},
            })),
          ],
        });
        break;
      case 'tool':
        out.push({
          role: 'user',
          content: message.results.map((result) => ({
            type: 'tool_result' as const,
            tool_use_id: result.toolCallId,
            content: toolResultText(result),
            ...(result.isError ? { is_error: true } : {}),
          })),
        });
        break;
    }
  }
  return out;
}

const toAnthropicTools = (tools: ModelTool[]): Tool[] =>
  tools.map((tool) => ({
    name: tool.name,
    ...(tool.description ? { description: tool.description } : {}),
    input_schema: { type: 'object', ...tool.inputSchema } as Tool['input_schema'],
  }));

/** `anthropic/<model>`: the Messages API with streaming and `tool_use`, through the official SDK. */
export class AnthropicProvider implements ModelProvider {
  /** Whose key the client holds: a refused key's error names it. */
  private readonly whose: 'deployment' | 'account';
  private readonly client: Anthropic;

  constructor(
    opts: { apiKey: string; baseURL?: string; timeoutMs: number; whose?: 'deployment' | 'account' },
    private readonly idleTimeoutMs: number,
  ) {
    this.whose = opts.whose ?? 'deployment';
    this.client = new Anthropic({ apiKey: opts.apiKey, baseURL: opts.baseURL, timeout: opts.timeoutMs, maxRetries: 0 });
  }

  async stream(request: ProviderRequest, sink: StepSink): Promise<ProviderResult> {
    const idle = new AbortController();
    const signal = AbortSignal.any([request.signal, idle.signal]);
    // Anthropic takes the system prompt apart from the turns.
    const system = [request.system, ...request.messages.flatMap((m) => (m.role === 'system' ? [m.content] : []))].filter(Boolean).join('\n\n');
    const usage = emptyUsage();
    let providerResponseId: string | null = null;
    let finishReason: string | null = null;
    let receivedAny = false;
    let stopped = false;
    const calls: { toolCallId: string; toolName: string; rawInput: string }[] = [];
    const callAtBlock = new Map<number, { toolCallId: string; toolName: string; rawInput: string }>();
    try {
      const stream = await this.client.messages.create(
        {
          model: request.model.name,
          max_tokens: request.maxOutputTokens ?? DEFAULT_MAX_TOKENS,
          messages: toAnthropicMessages(request.messages),
          ...(system ? { system } : {}),
          ...(request.tools.length ? { tools: toAnthropicTools(request.tools) } : {}),
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
            sink.usage?.({ ...usage });
            break;
          }
          case 'content_block_start':
            if (event.content_block.type === 'tool_use') {
              const call = { toolCallId: event.content_block.id, toolName: event.content_block.name, rawInput: '' };
              calls.push(call);
              callAtBlock.set(event.index, call);
              sink.toolInputStart(call.toolCallId, call.toolName);
            }
            break;
          case 'content_block_delta':
            if (event.delta.type === 'text_delta') sink.text(event.delta.text);
            else if (event.delta.type === 'input_json_delta') {
              const call = callAtBlock.get(event.index);
              if (call && event.delta.partial_json) {
                call.rawInput += event.delta.partial_json;
                sink.toolInputDelta(call.toolCallId, event.delta.partial_json);
              }
            }
            break;
          case 'message_delta':
            usage.outputTokens = event.usage.output_tokens;
            sink.usage?.({ ...usage });
            finishReason = event.delta.stop_reason ?? finishReason;
            break;
          case 'message_stop':
            stopped = true;
            break;
        }
      }
    } catch (err) {
      if (idle.signal.aborted && !request.signal.aborted) throw providerTimeout('Anthropic', this.idleTimeoutMs);
      throw fromSdkError('Anthropic', err, request.signal, receivedAny, this.whose);
    }
    if (!stopped) throw providerStreamIncomplete('Anthropic');
    usage.totalTokens = usage.inputTokens + usage.outputTokens;
    // A tool_use block with no input deltas has the empty object as its input.
    for (const call of calls) call.rawInput ||= '{}';
    return { usage, providerResponseId, finishReason: finishReason ?? 'stop', toolCalls: calls };
  }
}
