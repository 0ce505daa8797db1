import { createHash } from 'node:crypto';
import { expect } from 'chai';
import request from 'supertest';
import { AbstractChat, lastAssistantMessageIsCompleteWithToolCalls, type ChatState, type ChatStatus, type UIMessage } from 'ai';
import { RunyardChatTransport } from '../../clients/runyardChatTransport.js';
import { comparableParts } from '../support/aiSdkClient.js';
import { makePng } from '../support/files.js';
import { waitFor } from '../support/harness.js';
import { answerPendingCalls, HOLD_TOOL, waitForRunStatus } from '../support/runs.js';
import { startStack, type Stack } from '../support/stack.js';

/** The framework-free Chat: what `useChat` is in React, with its state in a plain array. */
class ArrayChatState implements ChatState<UIMessage> {
  status: ChatStatus = 'ready';
  error: Error | undefined = undefined;
  constructor(public messages: UIMessage[] = []) {}
  pushMessage = (message: UIMessage) => {
    this.messages = [...this.messages, message];
  };
  popMessage = () => {
    this.messages = this.messages.slice(0, -1);
  };
  replaceMessage = (index: number, message: UIMessage) => {
    this.messages = this.messages.map((m, i) => (i === index ? message : m));
  };
  snapshot = <T>(thing: T): T => structuredClone(thing);
}

class Chat extends AbstractChat<UIMessage> {
  constructor({ messages, ...init }: Omit<ConstructorParameters<typeof AbstractChat<UIMessage>>[0], 'state'> & { messages?: UIMessage[] }) {
    super({ ...init, state: new ArrayChatState(messages) });
  }
}

describe('a web UI drives a client-tool run with the ai package’s Chat class', function () {
  let stack: Stack;

  before(async () => {
    stack = await startStack();
  });
  after(() => stack.close());

  it('receives the call, adds the tool output, runyard continues the run, and the Chat ends with the persisted message', async () => {
    const errors: unknown[] = [];
    const transport = new RunyardChatTransport({
      baseUrl: await stack.api.url(),
      headers: { authorization: `Bearer ${stack.alice.key}` },
      run: {
        tools: [{ name: 'pick_color', description: 'asks the user for a color', inputSchema: { type: 'object', properties: { q: { type: 'string' } } } }],
      },
    });
    const calls: string[] = [];
    const chat: Chat = new Chat({
      transport,
      onError: (error) => errors.push(error),
      sendAutomaticallyWhen: lastAssistantMessageIsCompleteWithToolCalls,
      onToolCall: ({ toolCall }) => {
        calls.push(toolCall.toolName);
        // The user picks in the UI; not awaited inside onToolCall, as the ai package advises.
        void chat.addToolOutput({ tool: 'pick_color', toolCallId: toolCall.toolCallId, output: { color: 'amber' } });
      },
    });
    await chat.sendMessage({ text: 'call pick_color {"q":"warm"}' });
    await waitFor(() => chat.status === 'ready' && chat.lastMessage?.parts.some((part) => part.type === 'text'), {
      what: 'the chat to finish',
      timeoutMs: 20_000,
    });
    expect(errors).to.deep.equal([]);
    expect(calls).to.deep.equal(['pick_color']);
    const answer = chat.lastMessage!;
    expect(answer.parts.find((part) => part.type === 'text')).to.deep.include({ text: '{"color":"amber"}' });
    const runs = (
      await request(stack.api.app)
        .get('/api/chat/runs?limit=1')
        .set({ authorization: `Bearer ${stack.alice.key}` })
    ).body.runs;
    expect(runs[0]).to.include({ status: 'completed', steps: 2 });
    const history = (
      await request(stack.api.app)
        .get(`/api/chats/${runs[0].chatId}/messages`)
        .set({ authorization: `Bearer ${stack.alice.key}` })
    ).body.messages;
    const persisted = history.find((m: { role: string }) => m.role === 'assistant');
    expect(comparableParts(answer.parts)).to.deep.equal(comparableParts(persisted.parts));
  });

  it('maps Chat.regenerate() and an edit (sendMessage with a messageId) to runyard’s regenerate and edit: never a duplicate message', async () => {
    const base = await stack.api.url();
    const transport = new RunyardChatTransport({ baseUrl: base, headers: { authorization: `Bearer ${stack.alice.key}` } });
    const errors: unknown[] = [];
    const chat: Chat = new Chat({ transport, onError: (error) => errors.push(error) });
    const ready = (what: string) =>
      waitFor(() => chat.status === 'ready' && chat.lastMessage?.role === 'assistant' && chat.lastMessage.parts.some((p) => p.type === 'text'), {
        what,
        timeoutMs: 20_000,
      });
    await chat.sendMessage({ text: 'first question' });
    await ready('the first answer');
    await chat.regenerate();
    await ready('the regenerated answer');
    await chat.sendMessage({ text: 'the question, edited', messageId: chat.messages[0]!.id });
    await ready('the edit’s answer');
    expect(errors).to.deep.equal([]);
    const history = (
      await request(stack.api.app)
        .get(`/api/chats/${transport.runyardChatId}/messages`)
        .set({ authorization: `Bearer ${stack.alice.key}` })
    ).body.messages as { role: string; parts: { type: string; text?: string }[] }[];
    expect(history.map((m) => [m.role, m.parts.map((p) => p.text ?? '').join('')])).to.deep.equal([
      ['user', 'the question, edited'],
      ['assistant', 'the question, edited'],
    ]);
    expect(chat.messages.map((m) => m.role)).to.deep.equal(['user', 'assistant']);
    expect(await stack.api.deps.db.run.count({ where: { chatId: transport.runyardChatId! } })).to.equal(3);
  });

  it('sends a file part from Chat through the transport; history shows it with a url a page reads with a stream token (SPEC section 20)', async () => {
    const base = await stack.api.url();
    const transport = new RunyardChatTransport({ baseUrl: base, headers: { authorization: `Bearer ${stack.alice.key}` } });
    const chat: Chat = new Chat({ transport });
    const png = makePng(12, 9, { seed: 5 });
    const digest = createHash('sha256').update(png).digest('hex');
    // What Chat does with a picked file: a data: URL in a file part.
    await chat.sendMessage({
      text: 'what is in this picture?',
      files: [{ type: 'file', mediaType: 'image/png', filename: 'pic.png', url: `data:image/png;base64,${png.toString('base64')}` }],
    });
    await waitFor(() => chat.status === 'ready' && chat.lastMessage?.role === 'assistant', { what: 'the answer', timeoutMs: 20_000 });
    const answer = chat.lastMessage!.parts.flatMap((p) => (p.type === 'text' ? [p.text] : [])).join('');
    expect(answer).to.equal(`[file pic.png image/png ${png.length} ${digest}]\nwhat is in this picture?`);
    const auth = { authorization: `Bearer ${stack.alice.key}` };
    const history = (await request(stack.api.app).get(`/api/chats/${transport.runyardChatId}/messages`).set(auth)).body.messages as {
      parts: { type: string; url?: string }[];
      metadata: { runId: string };
    }[];
    const file = history[0]!.parts.find((p) => p.type === 'file')!;
    expect(file.url).to.match(/^\/api\/files\/[0-9a-f-]{36}\/content$/);
    const token = (await request(stack.api.app).post(`/api/chat/runs/${history[1]!.metadata.runId}/stream-token`).set(auth)).body.token as string;
    const image = await fetch(`${base}${file.url}?token=${token}`);
    expect([image.status, image.headers.get('content-type')]).to.deep.equal([200, 'image/png']);
    expect(
      createHash('sha256')
        .update(Buffer.from(await image.arrayBuffer()))
        .digest('hex'),
    ).to.equal(digest);
  });

  it('a message sent to a busy chat is queued, and the transport streams the run it becomes by following the chat’s events', async () => {
    const base = await stack.api.url();
    const transport = new RunyardChatTransport({
      baseUrl: base,
      headers: { authorization: `Bearer ${stack.alice.key}` },
      run: { model: 'openai/gpt-4o-mini', tools: [HOLD_TOOL] },
    });
    const chat: Chat = new Chat({ transport });
    await chat.sendMessage({ text: 'hold on [[call1:hold:{}]]' });
    await waitFor(() => chat.status === 'ready', { what: 'the parked run’s stream to end', timeoutMs: 20_000 });
    const parked = await stack.api.deps.db.run.findFirstOrThrow({ where: { chatId: transport.runyardChatId!, status: 'requires_action' } });
    const sending = chat.sendMessage({ text: 'and after that' });
    await waitFor(async () => (await stack.api.deps.db.queuedMessage.count({ where: { chatId: transport.runyardChatId! } })) === 1, {
      what: 'the message queued',
    });
    await waitFor(async () => (await stack.api.deps.db.chatEventWatcher.count({ where: { subject: `chat:${transport.runyardChatId}` } })) === 1, {
      what: 'the transport following the chat',
    });
    await answerPendingCalls(stack.api.app, stack.alice.key, parked.id);
    await sending;
    await waitFor(() => chat.status === 'ready' && chat.lastMessage?.role === 'assistant', { what: 'the queued message’s answer', timeoutMs: 20_000 });
    const answer = chat.lastMessage!.parts.flatMap((p) => (p.type === 'text' ? [p.text] : [])).join('');
    expect(answer).to.equal('Echo: and after that');
  });

  it('holds a three-turn conversation in one runyard chat, a client tool in the second turn, sending only each new message; resumeStream picks up an answer mid-way', async () => {
    const base = await stack.api.url();
    const pickColor = { name: 'pick_color', description: 'asks the user for a color', inputSchema: { type: 'object', properties: { q: { type: 'string' } } } };
    const transport = new RunyardChatTransport({ baseUrl: base, headers: { authorization: `Bearer ${stack.alice.key}` }, run: { tools: [pickColor] } });
    const errors: unknown[] = [];
    const chat: Chat = new Chat({
      transport,
      onError: (error) => errors.push(error),
      sendAutomaticallyWhen: lastAssistantMessageIsCompleteWithToolCalls,
      onToolCall: ({ toolCall }) => {
        void chat.addToolOutput({ tool: 'pick_color', toolCallId: toolCall.toolCallId, output: { color: 'teal' } });
      },
    });
    const answered = (turns: number) =>
      waitFor(
        () =>
          chat.status === 'ready' &&
          chat.messages.filter((m) => m.role === 'assistant').length === turns &&
          chat.lastMessage?.parts.some((p) => p.type === 'text'),
        {
          what: `turn ${turns} to finish`,
          timeoutMs: 20_000,
        },
      );
    await chat.sendMessage({ text: 'hello there' });
    await answered(1);
    await chat.sendMessage({ text: 'call pick_color {"q":"cool"}' });
    await answered(2);
    await chat.sendMessage({ text: 'thanks' });
    await answered(3);
    expect(errors).to.deep.equal([]);
    const chatId = transport.runyardChatId!;
    const runs = await stack.api.deps.db.run.findMany({ where: { chatId }, orderBy: { seq: 'asc' } });
    expect(runs.map((r) => r.status)).to.deep.equal(['completed', 'completed', 'completed']);
    const history = (
      await request(stack.api.app)
        .get(`/api/chats/${chatId}/messages`)
        .set({ authorization: `Bearer ${stack.alice.key}` })
    ).body.messages as {
      role: string;
      parts: { type: string; text?: string }[];
    }[];
    const userTexts = history.filter((m) => m.role === 'user').map((m) => m.parts.map((p) => p.text).join(''));
    expect(userTexts, 'each message sent once').to.deep.equal(['hello there', 'call pick_color {"q":"cool"}', 'thanks']);
    expect(comparableParts(chat.messages.filter((m) => m.role === 'assistant')[1]!.parts)).to.deep.equal(comparableParts(history[3]!.parts));

    // A page reload mid-answer: a new Chat with the messages so far resumes through the chat's stream.
    const slow = await request(stack.api.app)
      .post(`/api/chats/${chatId}/messages`)
      .set({ authorization: `Bearer ${stack.alice.key}` })
      .send({ prompt: `tell me more ${'about this '.repeat(20)} [[slow:100]]`, model: 'openai/gpt-4o-mini' });
    await waitFor(async () => (await stack.api.deps.db.run.findUnique({ where: { id: slow.body.runId } }))?.status === 'running');
    const reloaded = new Chat({
      transport: new RunyardChatTransport({ baseUrl: base, headers: { authorization: `Bearer ${stack.alice.key}` }, chatId }),
      messages: chat.messages,
    });
    await reloaded.resumeStream();
    await waitFor(() => reloaded.status === 'ready' && reloaded.messages.length === chat.messages.length + 1, {
      what: 'the resumed answer',
      timeoutMs: 20_000,
    });
    await waitForRunStatus(stack.api.deps, slow.body.runId, ['completed']);
    const persisted = (
      await request(stack.api.app)
        .get(`/api/chats/${chatId}/messages`)
        .set({ authorization: `Bearer ${stack.alice.key}` })
    ).body.messages.at(-1);
    expect(comparableParts(reloaded.lastMessage!.parts)).to.deep.equal(comparableParts(persisted.parts));
    const idle = new Chat({
      transport: new RunyardChatTransport({ baseUrl: base, headers: { authorization: `Bearer ${stack.alice.key}` }, chatId }),
      messages: reloaded.messages,
    });
    await idle.resumeStream();
    expect(idle.messages.length, 'nothing to resume once idle (204)').to.equal(reloaded.messages.length);
  });
});
