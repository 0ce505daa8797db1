import { expect } from 'chai';
import { textOfParts } from '../../shared/stream/messageParts.js';
import request from 'supertest';
import type { FleetMember } from '../../worker/fleet/fleetMember.js';
import { RunEventWriter, runEventKeys } from '../../shared/stream/events.js';
import { endRun } from '../../shared/runs/transitions/endUnheld.js';
import { startApi, startWorker, waitFor, type ApiHarness } from '../support/harness.js';
import { createAccount, createEphemeralKey, type TestAccount } from '../support/factories.js';
import { startRunOk, waitForRunStatus } from '../support/runs.js';
import { EventSource } from 'eventsource';
import { createConnection } from 'node:net';
import { randomUUID } from 'node:crypto';
import { assembledText, readSse } from '../support/sse.js';
import { readWithAiSdk } from '../support/aiSdkClient.js';
import { startStack, type Stack } from '../support/stack.js';

const words = (n: number) => Array.from({ length: n }, (_, i) => `w${i}`).join(' ');

describe('GET /api/chat/runs/{runId}/stream', () => {
  let stack: Stack;
  let api: ApiHarness;
  let alice: TestAccount;
  let base: string;
  let env: Record<string, string>;

  before(async () => {
    stack = await startStack({ LOCAL_MODEL_DELAY_MS: '30', SSE_KEEPALIVE_MS: '200' });
    ({ api, alice, env } = stack);
    base = await api.url();
  });
  after(() => stack.close());

  const streamUrl = (runId: string, query = '') => `${base}/api/chat/runs/${runId}/stream${query}`;
  const auth = () => ({ authorization: `Bearer ${alice.key}` });
  const persistedText = async (runId: string) => {
    const [message] = await api.deps.db.message.findMany({ where: { runId, role: 'assistant' } });
    return textOfParts(message!.parts as { type: string; text?: string }[]);
  };
  async function finishedRun(prompt: string) {
    const runId = await startRunOk(api.app, alice.key, { prompt });
    await waitForRunStatus(api.deps, runId, ['completed']);
    await waitFor(() => api.deps.db.cleanupRecord.count({ where: { runId } }), { what: 'the cleanup' });
    return runId;
  }

  it('serves a finished run from the start, with the protocol headers, an id on every event and [DONE]', async () => {
    const runId = await finishedRun(words(6));
    const { res, events } = await readSse(streamUrl(runId), auth());
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.match(/^text\/event-stream/);
    expect(res.headers.get('x-vercel-ai-ui-message-stream')).to.equal('v1');
    expect(events.every((e) => typeof e.id === 'string' && e.id.length > 0)).to.equal(true);
    expect(events.at(-1)!.data).to.equal('[DONE]');
    expect(JSON.parse(events[0]!.data).type).to.equal('start');
    expect(assembledText(events)).to.equal(await persistedText(runId));
  });

  it('resumes after every event id of a finished stream with exactly the remainder', async () => {
    const runId = await finishedRun(words(5));
    const { events: all } = await readSse(streamUrl(runId), auth());
    for (const [index, event] of all.entries()) {
      const viaHeader = await readSse(streamUrl(runId), { ...auth(), 'last-event-id': event.id! });
      expect(viaHeader.events, `after event ${index}`).to.deep.equal(all.slice(index + 1));
    }
    const viaQuery = await readSse(streamUrl(runId, `?after=${all[2]!.id}`), auth());
    expect(viaQuery.events).to.deep.equal(all.slice(3));
  });

  it('shows tokens as they are produced, and a client that drops mid-run resumes with nothing lost or repeated', async () => {
    const runId = await startRunOk(api.app, alice.key, { prompt: words(40) });
    const first = await readSse(streamUrl(runId), auth(), { until: (e) => e.data.includes('"text-delta"') && Number(JSON.parse(e.data).delta.slice(1)) >= 5 });
    const run = await api.deps.db.run.findUniqueOrThrow({ where: { id: runId } });
    expect(run.status, 'the first client saw tokens while the run was still going').to.equal('running');
    const rest = await readSse(streamUrl(runId), { ...auth(), 'last-event-id': first.events.at(-1)!.id! });
    const combined = [...first.events, ...rest.events];
    expect(new Set(combined.map((e) => e.id)).size).to.equal(combined.length);
    const { events: whole } = await readSse(streamUrl(runId), auth());
    expect(combined).to.deep.equal(whole);
    expect(assembledText(combined)).to.equal(await persistedText(runId));
  });

  it('is served identically by a second api instance', async () => {
    const other = startApi({ ...env, QUEUE_PREFIX: api.prefix });
    try {
      const otherBase = await other.url();
      const runId = await startRunOk(api.app, alice.key, { prompt: words(15) });
      const [a, b] = await Promise.all([readSse(streamUrl(runId), auth()), readSse(`${otherBase}/api/chat/runs/${runId}/stream`, auth())]);
      expect(a.events.at(-1)!.data).to.equal('[DONE]');
      expect(b.events).to.deep.equal(a.events);
    } finally {
      await other.close();
    }
  });

  it('is understood by the AI SDK’s own stream parser, whose text equals the persisted message', async () => {
    const runId = await startRunOk(api.app, alice.key, { prompt: words(12), model: 'openai/gpt-4o-mini' });
    const { text, errors } = await readWithAiSdk(streamUrl(runId), auth());
    expect(errors).to.deep.equal([]);
    await waitForRunStatus(api.deps, runId, ['completed']);
    expect(text).to.equal(await persistedText(runId));
  });

  it('leaves a client that watched attempt 1 fail half-way with the text of attempt 2 only', async () => {
    const runId = await startRunOk(api.app, alice.key, { prompt: `alpha beta gamma delta [[cut-once:${Date.now()}]]`, model: 'openai/gpt-4o-mini' });
    const { text, chunks } = await readWithAiSdk(streamUrl(runId), auth());
    expect(chunks.some((c) => c.type === 'data-attempt')).to.equal(true);
    expect(text).to.equal('Echo: alpha beta gamma delta');
    expect(text).to.equal(await persistedText(runId));
  });

  it('releases its Redis subscription when the client goes away', async () => {
    const idle = startApi({ SSE_KEEPALIVE_MS: '100' }); // no worker: the run stays queued
    try {
      const bob = await createAccount(idle.deps.db);
      const runId = await startRunOk(idle.app, bob.key, { prompt: 'waiting' });
      const controller = new AbortController();
      const reading = readSse(`${await idle.url()}/api/chat/runs/${runId}/stream`, { authorization: `Bearer ${bob.key}` }, { signal: controller.signal });
      await waitFor(() => idle.deps.streams.watchedRuns === 1, { what: 'the subscription' });
      controller.abort();
      await reading;
      await waitFor(() => idle.deps.streams.watchedRuns === 0, { what: 'the subscription to be released' });
      const channels = (await idle.deps.redis.pubsub('CHANNELS', `${idle.prefix}:*`)) as string[];
      expect(channels).to.deep.equal([]);
    } finally {
      await idle.close();
    }
  });

  it('ends a live reader’s stream when the run ended without its worker ending it (worker died, the sweep failed the run)', async () => {
    const idle = startApi(); // no worker: this test plays the worker that streamed half an answer and died
    try {
      const bob = await createAccount(idle.deps.db);
      const runId = await startRunOk(idle.app, bob.key, { prompt: 'half' });
      const events = new RunEventWriter(idle.deps.redis, { prefix: idle.prefix, maxEvents: 1_000, ttlMs: 60_000 }, runId, 1);
      events.emit({ type: 'start' });
      events.emit({ type: 'text-start', id: 'text-1' });
      events.emit({ type: 'text-delta', id: 'text-1', delta: 'hal' });
      await events.flush();
      const reading = readSse(`${await idle.url()}/api/chat/runs/${runId}/stream`, { authorization: `Bearer ${bob.key}` }, { timeoutMs: 25_000 });
      await waitFor(() => idle.deps.streams.watchedRuns === 1, { what: 'the reader' });
      const error = { code: 'stalled', message: 'the run stopped making progress', retryable: true };
      expect(await endRun(idle.deps.sql, runId, { status: 'failed', reason: 'stalled', from: ['queued', 'running'], error })).to.equal(true);
      await idle.deps.db.$executeRaw`UPDATE runs SET finished_at = now() - interval '1 minute' WHERE id = ${runId}::uuid`;

      const live = await reading;
      expect(live.events.at(-1)!.data).to.equal('[DONE]');
      const chunks = live.events.slice(0, -1).map((e) => JSON.parse(e.data) as { type: string; data?: unknown; errorText?: string });
      expect(chunks.map((c) => c.type)).to.deep.equal(['start', 'text-start', 'text-delta', 'error', 'data-run-status', 'finish']);
      expect(chunks[4]!.data).to.deep.equal({ status: 'failed', error });
      // Ended once, on the stream itself: a later reader gets the same events, ids included.
      const later = await readSse(`${await idle.url()}/api/chat/runs/${runId}/stream`, { authorization: `Bearer ${bob.key}` });
      expect(later.events).to.deep.equal(live.events);
    } finally {
      await idle.close();
    }
  });

  it('carries a model call’s note with the step’s events: one append notes it, the next forgets it; alone while one is in flight or once fenced', async () => {
    const { redis } = api.deps;
    const runId = randomUUID();
    const keys = runEventKeys(api.prefix, runId);
    const opts = { prefix: api.prefix, maxEvents: 1_000, ttlMs: 60_000 };
    const stepEvents = async () => (await redis.xrange(keys.stream, '-', '+')).map(([, fields]) => (JSON.parse(fields[1]!) as { type: string }).type);
    const writer = new RunEventWriter(redis, opts, runId, 1);
    writer.emit({ type: 'start-step' });
    // Sent at once with the events queued before it: both are in Redis when the note resolves, with no flush.
    await writer.noteCall('{"attempt":1}', 60_000);
    expect(await redis.get(keys.call)).to.equal('{"attempt":1}');
    expect(await stepEvents()).to.deep.equal(['start-step']);
    // Forgotten with the next append, not before it.
    await writer.forgetCall();
    expect(await redis.get(keys.call), 'kept until the next append').to.equal('{"attempt":1}');
    writer.emit({ type: 'finish-step' });
    await writer.flush();
    expect(await redis.get(keys.call)).to.equal(null);
    expect(await stepEvents()).to.deep.equal(['start-step', 'finish-step']);
    // While an append is in flight the note does not wait for it.
    writer.emit({ type: 'data-filler', data: 'x'.repeat(200_000) });
    await new Promise((resolve) => setImmediate(resolve));
    await writer.noteCall('{"attempt":1,"second":true}', 60_000);
    expect(await redis.get(keys.call)).to.equal('{"attempt":1,"second":true}');
    await writer.flush();
    // A newer attempt fences this one off: its events are dropped, its note still changes (the next attempt charges it).
    const newer = new RunEventWriter(redis, opts, runId, 2);
    newer.emit({ type: 'start' });
    await newer.flush();
    writer.emit({ type: 'start-step' });
    await writer.noteCall('{"attempt":1,"third":true}', 60_000);
    expect(await redis.get(keys.call)).to.equal('{"attempt":1,"third":true}');
    expect(writer.isFenced).to.equal(true);
    await writer.forgetCall();
    expect(await redis.get(keys.call)).to.equal(null);
    expect((await stepEvents()).filter((type) => type === 'start-step')).to.have.length(1);
    await redis.del(keys.stream, keys.fence);
  });

  it('sends keep-alive comments on an idle stream', async () => {
    const idle = startApi({ SSE_KEEPALIVE_MS: '100' });
    try {
      const bob = await createAccount(idle.deps.db);
      const runId = await startRunOk(idle.app, bob.key, { prompt: 'waiting' });
      const controller = new AbortController();
      const res = await fetch(`${await idle.url()}/api/chat/runs/${runId}/stream`, {
        headers: { authorization: `Bearer ${bob.key}` },
        signal: controller.signal,
      });
      const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
      let seen = '';
      while (!seen.includes(': keep-alive')) seen += (await reader.read()).value ?? '';
      controller.abort();
      expect(seen).to.include(': keep-alive\n\n');
    } finally {
      await idle.close();
    }
  });

  it('replays the persisted messages once the Redis stream has expired', async () => {
    const runId = await finishedRun(words(4));
    const { events: live } = await readSse(streamUrl(runId), auth());
    await api.deps.redis.del(runEventKeys(api.prefix, runId).stream);
    const { events } = await readSse(streamUrl(runId), auth());
    expect(events.at(-1)!.data).to.equal('[DONE]');
    expect(assembledText(events)).to.equal(await persistedText(runId));
    const resumed = await readSse(streamUrl(runId), { ...auth(), 'last-event-id': events[1]!.id! });
    expect(resumed.events).to.deep.equal(events.slice(2));
    // Resuming from an id of the expired stream: what the client saw is unknown, so it gets the
    // run's outcome and the end, as the live stream ended.
    const fromExpired = await readSse(streamUrl(runId), { ...auth(), 'last-event-id': live[3]!.id! });
    const parsed = (list: typeof live) => list.map((e) => (e.data === '[DONE]' ? e.data : JSON.parse(e.data)));
    expect(parsed(fromExpired.events)).to.deep.equal(parsed(live.slice(-3)));
    expect(parsed(fromExpired.events)[0]).to.deep.include({ type: 'data-run-status' });
  });

  it('tells a client that has a finished run’s last event to stop (204), from the live stream and from the persisted replay', async () => {
    const runId = await finishedRun(words(3));
    const raw = await fetch(streamUrl(runId), { headers: auth() });
    expect((await raw.text()).startsWith('retry: '), 'every stream starts with a reconnect hint').to.equal(true);
    const { events } = await readSse(streamUrl(runId), auth());
    const done = events.at(-1)!;
    expect(done.data).to.equal('[DONE]');
    const afterDone = await fetch(streamUrl(runId), { headers: { ...auth(), 'last-event-id': done.id! } });
    expect(afterDone.status).to.equal(204);
    expect(await afterDone.text()).to.equal('');
    expect((await fetch(streamUrl(runId, `?after=${done.id}`), { headers: auth() })).status).to.equal(204);
    const beforeDone = await readSse(streamUrl(runId), { ...auth(), 'last-event-id': events.at(-2)!.id! });
    expect(beforeDone.res.status).to.equal(200);
    expect(beforeDone.events.map((e) => e.data)).to.deep.equal(['[DONE]']);

    await api.deps.redis.del(runEventKeys(api.prefix, runId).stream);
    const replay = await readSse(streamUrl(runId), auth());
    const replayDone = replay.events.at(-1)!;
    expect(replayDone.data).to.equal('[DONE]');
    expect((await fetch(streamUrl(runId), { headers: { ...auth(), 'last-event-id': replayDone.id! } })).status).to.equal(204);
    expect((await readSse(streamUrl(runId), { ...auth(), 'last-event-id': replay.events.at(-2)!.id! })).events.map((e) => e.data)).to.deep.equal(['[DONE]']);
  });

  it('stops a standard EventSource once the run is over: it reconnects with the id of [DONE] and gets 204', async () => {
    const runId = await finishedRun(words(3));
    const requests: (string | null)[] = [];
    const received: string[] = [];
    const source = new EventSource(streamUrl(runId), {
      fetch: (input, init) => {
        requests.push(new Headers(init?.headers).get('last-event-id'));
        return fetch(input, { ...init, headers: { ...Object.fromEntries(new Headers(init?.headers)), ...auth() } });
      },
    });
    source.onmessage = (event) => received.push(event.data);
    await waitFor(() => source.readyState === EventSource.CLOSED, { what: 'the EventSource to give up', timeoutMs: 15_000 });
    source.close();
    expect(received.at(-1)).to.equal('[DONE]');
    expect(requests).to.have.length(2);
    expect(requests[1], 'the reconnect named the last event').to.be.a('string');
  });

  it('releases everything of a client that stopped reading and then went away while the api waited to write', async () => {
    const idle = startApi(); // no worker: the run stays queued and its stream open
    try {
      const bob = await createAccount(idle.deps.db);
      const runId = await startRunOk(idle.app, bob.key, { prompt: 'never runs' });
      // A stream far larger than the socket buffers: the api must wait for 'drain' to write it.
      const writer = new RunEventWriter(idle.deps.redis, { prefix: idle.prefix, maxEvents: 100_000, ttlMs: 60_000 }, runId, 1);
      for (let i = 0; i < 200; i++) writer.emit({ type: 'data-filler', data: 'x'.repeat(50_000) });
      await writer.flush();
      const gauge = async () => Number(/runyard_active_streams\{[^}]*\} (\d+)/.exec(await idle.deps.metrics.registry.metrics())?.[1] ?? 0);
      const { hostname, port } = new URL(await idle.url());
      const socket = createConnection({ host: hostname, port: Number(port) });
      socket.pause(); // never reads
      socket.write(`GET /api/chat/runs/${runId}/stream HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${bob.key}\r\n\r\n`);
      await waitFor(async () => (await gauge()) === 1, { what: 'the stream to be open' });
      await new Promise((resolve) => setTimeout(resolve, 300)); // the api is now waiting for 'drain'
      socket.destroy();
      await waitFor(async () => (await gauge()) === 0, { what: 'the gauge to come back', timeoutMs: 10_000 });
      expect(idle.deps.streams.watchedRuns, 'its Redis watch released').to.equal(0);
    } finally {
      await idle.close();
    }
  });

  it('is 404 for another account, readable with the run’s own ephemeral key, and rejects a malformed Last-Event-ID', async () => {
    const runId = await finishedRun('mine');
    const bob = await createAccount(api.deps.db);
    const foreign = await request(api.app).get(`/api/chat/runs/${runId}/stream`).set(bob.auth);
    expect(foreign.status).to.equal(404);
    expect(foreign.body.error).to.equal('run_not_found');
    const key = await createEphemeralKey(api.deps.db, alice.accountId, runId);
    const own = await readSse(streamUrl(runId), { authorization: `Bearer ${key}` });
    expect(own.events.at(-1)!.data).to.equal('[DONE]');
    const bad = await request(api.app).get(`/api/chat/runs/${runId}/stream`).set(alice.auth).set('last-event-id', 'nonsense');
    expect(bad.status).to.equal(400);
    expect(bad.body.error).to.equal('invalid_event_id');
  });
});

describe('GET /api/chats/{chatId}/messages', () => {
  let api: ApiHarness;
  let worker: FleetMember;
  let alice: TestAccount;

  before(async () => {
    api = startApi();
    worker = await startWorker(api.prefix);
    alice = await createAccount(api.deps.db);
  });
  after(async () => {
    await worker.close(1_000);
    await api.close();
  });

  it('pages back from the newest, oldest first within a page, with each message’s metadata', async () => {
    const history = ['u1', 'a1', 'u2', 'a2', 'u3'].map((text, i) => ({ role: i % 2 ? 'assistant' : 'user', parts: [{ type: 'text', text }] }));
    const res = await request(api.app).post('/api/chat/runs').set(alice.auth).send({ messages: history });
    const { runId, chatId } = res.body;
    await waitForRunStatus(api.deps, runId, ['completed']);
    const texts = (page: { messages: { parts: { type: string; text: string }[] }[] }) =>
      page.messages.map((m) => m.parts.find((part) => part.type === 'text')!.text);

    const latest = await request(api.app).get(`/api/chats/${chatId}/messages?limit=4`).set(alice.auth);
    expect(latest.status).to.equal(200);
    expect(texts(latest.body)).to.deep.equal(['u2', 'a2', 'u3', 'u3']);
    expect(latest.body.hasMore).to.equal(true);
    const older = await request(api.app).get(`/api/chats/${chatId}/messages?limit=4&before=${latest.body.messages[0].id}`).set(alice.auth);
    expect(texts(older.body)).to.deep.equal(['u1', 'a1']);
    expect(older.body.hasMore).to.equal(false);
    const exact = await request(api.app).get(`/api/chats/${chatId}/messages?limit=6`).set(alice.auth);
    expect(exact.body.hasMore).to.equal(false);
    expect(exact.body.messages).to.have.length(6);

    const answer = latest.body.messages[3];
    expect(answer.role).to.equal('assistant');
    expect(answer.metadata).to.include({ runId, model: 'local/echo', interrupted: false, costMicros: 0 });
    expect(answer.metadata.usage).to.include({ outputTokens: 1 });
    expect(answer.metadata.runtimeMs).to.be.a('number');
    expect(answer.metadata.providerResponseId).to.match(/^echo-/);
    expect(latest.body.messages[0].metadata).to.include({ model: null, usage: null, providerResponseId: null });
  });

  it('is 404 for another account’s chat and 400 for a cursor from elsewhere', async () => {
    const res = await request(api.app).post('/api/chat/runs').set(alice.auth).send({ prompt: 'hello' });
    const bob = await createAccount(api.deps.db);
    const foreign = await request(api.app).get(`/api/chats/${res.body.chatId}/messages`).set(bob.auth);
    expect(foreign.status).to.equal(404);
    expect(foreign.body.error).to.equal('chat_not_found');
    const bad = await request(api.app).get(`/api/chats/${res.body.chatId}/messages?before=nope`).set(alice.auth);
    expect(bad.status).to.equal(400);
    expect(bad.body.error).to.equal('invalid_cursor');
  });

  it('lets a run’s ephemeral key read its own chat only', async () => {
    const mine = await request(api.app).post('/api/chat/runs').set(alice.auth).send({ prompt: 'one' });
    const other = await request(api.app).post('/api/chat/runs').set(alice.auth).send({ prompt: 'two' });
    // Mint the test's key after the run's cleanup, which revokes every key of the run.
    await waitFor(() => api.deps.db.cleanupRecord.count({ where: { runId: mine.body.runId } }));
    const ek = { authorization: `Bearer ${await createEphemeralKey(api.deps.db, alice.accountId, mine.body.runId)}` };
    expect((await request(api.app).get(`/api/chats/${mine.body.chatId}/messages`).set(ek)).status).to.equal(200);
    expect((await request(api.app).get(`/api/chats/${other.body.chatId}/messages`).set(ek)).status).to.equal(404);
  });
});
