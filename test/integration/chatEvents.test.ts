import { expect } from 'chai';
import request from 'supertest';
import { waitFor } from '../support/harness.js';
import { answerPendingCalls, HOLD_TOOL, startRunOk, waitForRunStatus } from '../support/runs.js';
import { readSse, type SseEvent } from '../support/sse.js';
import { startStack, type Stack } from '../support/stack.js';

type ChatEvent = { type: string; chatId: string; [key: string]: unknown };

/** A live subscription: its events as they come, until `stop` (or the server ends it). */
function subscribe(url: string, headers: Record<string, string>) {
  const events: (SseEvent & { event: ChatEvent })[] = [];
  const controller = new AbortController();
  const done = readSse(url, headers, {
    timeoutMs: 60_000,
    signal: controller.signal,
    until: (event) => {
      events.push({ ...event, event: JSON.parse(event.data) as ChatEvent });
      return false;
    },
  });
  return {
    events,
    done,
    stop: () => controller.abort(),
    /** Waits for an event after the first `from` that matches. */
    next: (matches: (event: ChatEvent) => boolean, what: string, from = 0) =>
      waitFor(() => events.slice(from).find((e) => matches(e.event)), { what, timeoutMs: 20_000 }),
  };
}

describe('a chat’s live events (SPEC section 19)', function () {
  this.timeout(90_000);
  let stack: Stack;
  before(async () => {
    stack = await startStack();
  });
  after(() => stack.close());

  const watching = (subject: string) =>
    waitFor(async () => (await stack.api.deps.db.chatEventWatcher.findUnique({ where: { subject } })) ?? null, { what: `a watch on ${subject}` });

  it('follows a chat across its runs — status, messages, the queue, a pending approval, its title — resumable without loss or repeats, and ends at its deletion', async () => {
    const base = await stack.api.url();
    const auth = stack.alice.auth;
    const first = await startRunOk(stack.api.app, stack.alice.key, { prompt: 'hello' });
    const { chatId } = await waitForRunStatus(stack.api.deps, first, ['completed']);
    const chat = subscribe(`${base}/api/chats/${chatId}/events`, auth);
    const feed = subscribe(`${base}/api/chats/events`, auth);
    await watching(`chat:${chatId}`);
    await watching(`account:${stack.alice.accountId}`);

    const sent = await request(stack.api.app).post(`/api/chats/${chatId}/messages`).set(auth).send({ prompt: 'second turn' });
    expect(sent.status).to.equal(202);
    await chat.next((e) => e.type === 'chat.status' && e.status === 'busy', 'busy');
    const added = await chat.next((e) => e.type === 'chat.messages' && (e.added as string[]).includes(sent.body.messageId), 'the user message');
    await chat.next((e) => e.type === 'chat.status' && e.status === 'idle', 'idle again');
    expect(added.event).to.deep.include({ chatId, discarded: [] });
    await feed.next((e) => e.type === 'chat.status' && e.chatId === chatId && e.status === 'idle', 'the account feed sees the chat idle');

    // A parked run waits for an approval; a message sent meanwhile is queued.
    const parked = await request(stack.api.app)
      .post(`/api/chats/${chatId}/messages`)
      .set(auth)
      .send({ prompt: 'hold on [[call1:hold:{}]]', model: 'openai/gpt-4o-mini', tools: [HOLD_TOOL] });
    const action = await chat.next((e) => e.type === 'chat.action_required' && (e.pendingToolCalls as unknown[]).length === 1, 'the pending call');
    expect(action.event).to.include({ runId: parked.body.runId });
    const queued = await request(stack.api.app).post(`/api/chats/${chatId}/messages`).set(auth).send({ prompt: 'after that' });
    expect(queued.body).to.include({ queued: true });
    const queue = await chat.next((e) => e.type === 'chat.queue' && (e.queued as unknown[]).length === 1, 'the queue');
    expect((queue.event.queued as { queuedMessageId: string }[])[0]!.queuedMessageId).to.equal(queued.body.queuedMessageId);
    const mark = chat.events.length;
    await answerPendingCalls(stack.api.app, stack.alice.key, parked.body.runId);
    await chat.next((e) => e.type === 'chat.queue' && (e.queued as unknown[]).length === 0, 'the queue emptied by the promotion', mark);
    await chat.next((e) => e.type === 'chat.action_required' && (e.pendingToolCalls as unknown[]).length === 0, 'the approval answered', mark);
    await waitFor(
      async () =>
        (await request(stack.api.app).get(`/api/chats/${chatId}`).set(auth)).body.status === 'idle' &&
        (await stack.api.deps.db.run.count({ where: { chatId } })) === 4,
      { what: 'the queued message answered' },
    );
    await chat.next(
      (e) => e.type === 'chat.status' && e.status === 'idle',
      'idle after the queued message',
      chat.events.findLastIndex((e) => e.event.type === 'chat.status' && e.event.status === 'busy'),
    );

    expect((await request(stack.api.app).patch(`/api/chats/${chatId}`).set(auth).send({ title: 'Trip plans' })).status).to.equal(200);
    await chat.next((e) => e.type === 'chat.title' && e.title === 'Trip plans', 'the title');
    await feed.next((e) => e.type === 'chat.title' && e.chatId === chatId && e.title === 'Trip plans', 'the title in the feed');

    // A client that reconnects with Last-Event-ID gets what came after, nothing twice.
    const ids = chat.events.map((e) => e.id!);
    expect(new Set(ids).size, 'ids are unique').to.equal(ids.length);
    const resumeAt = Math.floor(ids.length / 2);
    const again = subscribe(`${base}/api/chats/${chatId}/events`, { ...auth, 'last-event-id': ids[resumeAt]! });
    await waitFor(() => again.events.length >= ids.length - resumeAt - 1, { what: 'the resumed events' });
    expect(again.events.map((e) => e.id)).to.deep.equal(ids.slice(resumeAt + 1));

    // A page follows the chat with a stream token.
    const minted = await request(stack.api.app).post(`/api/chats/${chatId}/stream-token`).set(auth);
    expect(minted.status).to.equal(201);
    const page = subscribe(`${base}/api/chats/${chatId}/events?token=${minted.body.token}&after=${ids[0]}`, {});
    await waitFor(() => page.events.length >= ids.length - 1, { what: 'the events through a stream token' });
    expect((await request(stack.api.app).get(`/api/chats/events?token=${minted.body.token}`)).status, 'a token is not the account').to.be.oneOf([401, 403]);

    expect((await request(stack.api.app).delete(`/api/chats/${chatId}`).set(auth)).status).to.equal(202);
    await chat.done;
    await again.done;
    expect(chat.events.at(-1)!.event).to.deep.equal({ type: 'chat.deleted', chatId });
    await feed.next((e) => e.type === 'chat.deleted' && e.chatId === chatId, 'the deletion in the feed');
    feed.stop();
    page.stop();
  });

  it('sees a new chat in the account’s feed, and refuses a chat of another account', async () => {
    const base = await stack.api.url();
    const feed = subscribe(`${base}/api/chats/events`, stack.alice.auth);
    await watching(`account:${stack.alice.accountId}`);
    const runId = await startRunOk(stack.api.app, stack.alice.key, { prompt: 'a new chat' });
    const { chatId } = await waitForRunStatus(stack.api.deps, runId, ['completed']);
    await feed.next((e) => e.type === 'chat.created' && e.chatId === chatId, 'the new chat');
    feed.stop();
    const other = await startRunOk(stack.api.app, stack.alice.key, { prompt: 'mine' });
    const { chatId: mine } = await waitForRunStatus(stack.api.deps, other, ['completed']);
    const bob = (await import('../support/factories.js')).createAccount(stack.api.deps.db);
    expect(
      (
        await request(stack.api.app)
          .get(`/api/chats/${mine}/events`)
          .set((await bob).auth)
      ).status,
    ).to.equal(404);
  });
});
