import { expect } from 'chai';
import request from 'supertest';
import { AbstractChat, lastAssistantMessageIsCompleteWithToolCalls, type ChatState, type ChatStatus, type UIMessage } from 'ai';
import { RunyardChatTransport } from '../../clients/runyardChatTransport.js';
import { comparableParts } from '../support/aiSdkClient.js';
import { waitFor } from '../support/harness.js';
import { startStack, type Stack } from '../support/stack.js';

/** The framework-free Chat: what `useChat` is in React, with its state in a plain array. */
class ArrayChatState implements ChatState<UIMessage> {
  status: ChatStatus = 'ready';
  error: Error | undefined = undefined;
  messages: UIMessage[] = [];
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
  constructor(init: Omit<ConstructorParameters<typeof AbstractChat<UIMessage>>[0], 'state'>) {
    super({ ...init, state: new ArrayChatState() });
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
});
