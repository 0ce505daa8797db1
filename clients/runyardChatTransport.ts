import type { ChatTransport, UIMessage, UIMessageChunk } from 'ai';
import { EventSourceParserStream } from 'eventsource-parser/stream';

/**
 * A `ChatTransport` for the `ai` package's Chat classes (`AbstractChat`, `@ai-sdk/react`'s
 * `useChat`, ...) that talks to runyard, for a web UI. runyard's protocol is REST + SSE rather
 * than one streaming POST, so this adapter:
 * - starts the conversation with a run (`POST /api/chat/runs` with the Chat's messages and your
 *   run settings) and afterwards sends only each new user message to the same runyard chat
 *   (`POST /api/chats/{chatId}/messages`): runyard keeps the history, tool calls included;
 * - ends its stream when the run parks in `requires_action`, so the Chat runs `onToolCall`, takes
 *   `addToolOutput`, and sends again (`sendAutomaticallyWhen: lastAssistantMessageIsCompleteWithToolCalls`);
 * - answers the pending calls from the last assistant message (`POST .../tool-results`) and
 *   streams the continuation from the last event it had, skipping what the Chat already has (the
 *   new attempt's `start` and its re-sent steps), so the same assistant message simply grows;
 * - resumes through the chat's stream (`GET /api/chats/{chatId}/stream`, 204 when idle): what
 *   `chat.resumeStream()` calls, e.g. after a page reload (give the runyard chat as `chatId`);
 * - maps `chat.regenerate()` to `POST /api/chats/{chatId}/regenerate` and an edit (`sendMessage`
 *   with a `messageId`) to `PATCH /api/chats/{chatId}/messages/{messageId}` (the runyard message at
 *   the same place among the user messages): runyard drops the turns after it, never a duplicate;
 * - follows the chat's live events (`GET /api/chats/{chatId}/events`) for the run a queued message
 *   becomes, rather than polling.
 * Copy it into your frontend; in the page, pass a stream token's `Authorization` instead of a key.
 */
export type RunyardTransportOptions = {
  /** runyard's base URL, e.g. https://runyard.example.com */
  baseUrl: string;
  /** Headers of every request: `Authorization: Bearer <key or stream token>`. */
  headers: Record<string, string>;
  /** Extra fields of the first POST /api/chat/runs (`tools`, `model`, `system`, `maxSteps`, `title`, ...); later messages keep them (the chat's settings). */
  run?: Record<string, unknown>;
  /** The runyard chat this Chat continues (after a page reload); otherwise its first message starts one. */
  chatId?: string;
  /** What a message to a busy runyard chat does: `queue` (the default, as the API's) or `interrupt` (the UI's latest message wins). */
  onBusy?: 'interrupt' | 'queue';
};

type RunState = { runId: string; lastEventId: string | null; pending: string[] };

const RUN_SETTINGS = ['model', 'system', 'tools', 'mcpServers', 'maxSteps', 'maxOutputTokens', 'webhook'];

export class RunyardChatTransport implements ChatTransport<UIMessage> {
  /** A resumed stream replays the active run from its start: the Chat starts its message over. */
  readonly resumeStreamIsReplay = true;
  private run: RunState | null = null;
  private chatId: string | undefined;

  constructor(private readonly options: RunyardTransportOptions) {
    this.chatId = options.chatId;
  }

  /** The runyard chat this transport talks to (known after the first message). */
  get runyardChatId(): string | undefined {
    return this.chatId;
  }

  async sendMessages({
    messages,
    abortSignal,
    trigger,
    messageId,
  }: Parameters<ChatTransport<UIMessage>['sendMessages']>[0]): Promise<ReadableStream<UIMessageChunk>> {
    const last = messages[messages.length - 1];
    if (this.chatId && trigger === 'regenerate-message') return this.rewrite(`/api/chats/${this.chatId}/regenerate`, 'POST', {}, abortSignal);
    if (this.chatId && trigger === 'submit-message' && messageId && last?.role === 'user') {
      // An edit: the Chat replaced its message and dropped what followed; runyard does the same to its own.
      const place = messages.filter((message) => message.role === 'user').length - 1;
      const target = await this.userMessageAt(place, abortSignal);
      if (target) return this.rewrite(`/api/chats/${this.chatId}/messages/${target}`, 'PATCH', { message: toRunyardMessage(last) }, abortSignal);
    }
    if (this.run && last?.role === 'assistant' && this.run.pending.length) {
      const results = last.parts.flatMap((part): { toolCallId: string; output?: unknown; error?: string }[] => {
        const tool = part as { toolCallId?: string; state?: string; output?: unknown; errorText?: string };
        if (!tool.toolCallId || !this.run!.pending.includes(tool.toolCallId)) return [];
        if (tool.state === 'output-available') return [{ toolCallId: tool.toolCallId, output: tool.output }];
        if (tool.state === 'output-error') return [{ toolCallId: tool.toolCallId, error: tool.errorText ?? 'error' }];
        return [];
      });
      await this.post(`/api/chat/runs/${this.run.runId}/tool-results`, { results }, abortSignal);
      const stepsAlready = last.parts.filter((part) => part.type === 'step-start').length;
      return this.stream(this.run, abortSignal, stepsAlready);
    }
    if (!this.chatId) {
      const started = (await this.post('/api/chat/runs', { ...this.options.run, messages: messages.map(toRunyardMessage) }, abortSignal)) as {
        runId: string;
        chatId: string;
      };
      this.chatId = started.chatId;
      this.run = { runId: started.runId, lastEventId: null, pending: [] };
      return this.stream(this.run, abortSignal, 0);
    }
    // A conversation going on: only the new message; the chat's settings carry (yours, if you change them).
    const settings = Object.fromEntries(Object.entries(this.options.run ?? {}).filter(([name]) => RUN_SETTINGS.includes(name)));
    const previousRunId = this.run?.runId;
    const sent = (await this.post(
      `/api/chats/${this.chatId}/messages`,
      { ...settings, message: toRunyardMessage(last!), onBusy: this.options.onBusy ?? 'queue' },
      abortSignal,
    )) as { runId?: string; queued?: boolean };
    const runId = sent.runId ?? (await this.nextActiveRun(previousRunId, abortSignal));
    this.run = { runId, lastEventId: null, pending: [] };
    return this.stream(this.run, abortSignal, 0);
  }

  async reconnectToStream({ abortSignal }: Parameters<ChatTransport<UIMessage>['reconnectToStream']>[0]): Promise<ReadableStream<UIMessageChunk> | null> {
    if (!this.chatId) return null;
    const res = await fetch(`${this.options.baseUrl}/api/chats/${this.chatId}/stream`, { headers: this.options.headers, signal: abortSignal });
    if (res.status === 204) return null;
    const chat = (await (await fetch(`${this.options.baseUrl}/api/chats/${this.chatId}`, { headers: this.options.headers, signal: abortSignal })).json()) as {
      activeRunId?: string | null;
    };
    this.run = { runId: chat.activeRunId ?? '', lastEventId: null, pending: [] };
    return this.chunks(res, this.run, 0);
  }

  /**
   * A queued message becomes a run once the active one has ended: the chat's next active run, from
   * the chat's live events (`GET /api/chats/{chatId}/events`, its `chat.status`), not by polling.
   * Subscribed first, then the chat read once: a run that started before the subscription is there.
   */
  private async nextActiveRun(previousRunId: string | undefined, signal: AbortSignal | undefined): Promise<string> {
    const controller = new AbortController();
    const stop = () => controller.abort();
    signal?.addEventListener('abort', stop, { once: true });
    try {
      const events = await fetch(`${this.options.baseUrl}/api/chats/${this.chatId}/events`, { headers: this.options.headers, signal: controller.signal });
      if (!events.ok || !events.body) throw new Error(`runyard answered ${events.status} to the chat's events`);
      const chat = (await (
        await fetch(`${this.options.baseUrl}/api/chats/${this.chatId}`, { headers: this.options.headers, signal: controller.signal })
      ).json()) as {
        activeRunId: string | null;
      };
      if (chat.activeRunId && chat.activeRunId !== previousRunId) return chat.activeRunId;
      const stream = events.body.pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream());
      for await (const event of stream as unknown as AsyncIterable<{ data: string }>) {
        const change = JSON.parse(event.data) as { type: string; activeRunId?: string | null };
        if (change.type === 'chat.status' && change.activeRunId && change.activeRunId !== previousRunId) return change.activeRunId;
        if (change.type === 'chat.deleted') throw new Error('the runyard chat was deleted');
      }
      signal?.throwIfAborted();
      throw new Error("the chat's events ended before its next run started");
    } finally {
      signal?.removeEventListener('abort', stop);
      controller.abort();
    }
  }

  /** An edit or a regenerate: the run that answers it (once it started), streamed from its start. */
  private async rewrite(path: string, method: 'POST' | 'PATCH', body: unknown, signal: AbortSignal | undefined): Promise<ReadableStream<UIMessageChunk>> {
    const previousRunId = this.run?.runId;
    const sent = (await this.post(path, body, signal, method)) as { runId?: string };
    const runId = sent.runId ?? (await this.nextActiveRun(previousRunId, signal));
    this.run = { runId, lastEventId: null, pending: [] };
    return this.stream(this.run, signal, 0);
  }

  /** The id of runyard's `place`-th user message (0-based) of the chat's history, or null. */
  private async userMessageAt(place: number, signal: AbortSignal | undefined): Promise<string | null> {
    const res = await fetch(`${this.options.baseUrl}/api/chats/${this.chatId}/messages?limit=200`, { headers: this.options.headers, signal });
    if (!res.ok) return null;
    const { messages } = (await res.json()) as { messages: { id: string; role: string }[] };
    return messages.filter((message) => message.role === 'user')[place]?.id ?? null;
  }

  private async post(path: string, body: unknown, signal: AbortSignal | undefined, method: 'POST' | 'PATCH' = 'POST'): Promise<unknown> {
    const res = await fetch(`${this.options.baseUrl}${path}`, {
      method,
      headers: { ...this.options.headers, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal,
    });
    const answer = (await res.json()) as { error?: string; detail?: string };
    if (!res.ok) throw new Error(`${answer.error}: ${answer.detail}`);
    return answer;
  }

  /** The run's events from after the last one this transport saw, until [DONE] or until the run parks. */
  private async stream(run: RunState, signal: AbortSignal | undefined, skipSteps: number): Promise<ReadableStream<UIMessageChunk>> {
    const res = await fetch(`${this.options.baseUrl}/api/chat/runs/${run.runId}/stream`, {
      headers: { ...this.options.headers, ...(run.lastEventId ? { 'last-event-id': run.lastEventId } : {}) },
      signal,
    });
    return this.chunks(res, run, skipSteps);
  }

  private chunks(res: Response, run: RunState, skipSteps: number): ReadableStream<UIMessageChunk> {
    if (!res.ok || !res.body) throw new Error(`runyard's stream answered ${res.status}`);
    let resent = skipSteps;
    let skipping = false;
    return res.body
      .pipeThrough(new TextDecoderStream())
      .pipeThrough(new EventSourceParserStream())
      .pipeThrough(
        new TransformStream<{ id?: string; data: string }, UIMessageChunk>({
          transform(event, controller) {
            if (event.id) run.lastEventId = event.id;
            if (event.data === '[DONE]') return controller.terminate();
            const chunk = JSON.parse(event.data) as UIMessageChunk & { data?: { status?: string; pendingToolCalls?: { toolCallId: string }[] } };
            // A new attempt (the continuation) starts over: the Chat already has its first steps.
            if (chunk.type === 'start' && run.lastEventId && skipSteps > 0) return;
            if (chunk.type === 'data-attempt') {
              skipping = resent > 0;
              return controller.enqueue(chunk);
            }
            if (skipping) {
              if (chunk.type === 'finish-step' && --resent === 0) skipping = false;
              if (!chunk.type.startsWith('data-')) return;
            }
            controller.enqueue(chunk);
            if (chunk.type === 'data-run-status' && chunk.data?.status === 'requires_action') {
              run.pending = (chunk.data.pendingToolCalls ?? []).map((call) => call.toolCallId);
              controller.terminate(); // the Chat gets its tool calls; it sends again with their outputs
            }
          },
        }),
      );
  }
}

/** A Chat message as runyard's POST takes it: text, a user's files (data: URLs or runyard:file/<id>), steps and finished tool parts. */
function toRunyardMessage(message: UIMessage) {
  const parts = message.parts.flatMap((part) => {
    if (part.type === 'text') return [{ type: 'text', text: part.text }];
    if (part.type === 'file')
      return message.role === 'user' ? [{ type: 'file', mediaType: part.mediaType, url: part.url, ...(part.filename ? { filename: part.filename } : {}) }] : [];
    if (part.type === 'step-start') return message.role === 'assistant' ? [{ type: 'step-start' }] : [];
    const tool = part as { type: string; toolCallId?: string; state?: string; input?: unknown; output?: unknown; errorText?: string };
    if (tool.type.startsWith('tool-') && tool.toolCallId && ['output-available', 'output-error', 'output-denied'].includes(tool.state ?? '')) {
      return [{ type: tool.type, toolCallId: tool.toolCallId, state: tool.state, input: tool.input, output: tool.output, errorText: tool.errorText }];
    }
    return [];
  });
  return { role: message.role, parts };
}
