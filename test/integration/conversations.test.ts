import { expect } from 'chai';
import request from 'supertest';
import { readSse } from '../support/sse.js';
import { startToolServer, type ToolServer } from '../support/toolServer.js';
import { createAccount } from '../support/factories.js';
import { startApi, waitFor } from '../support/harness.js';
import { HOLD_TOOL, startParkedRun, startRunOk, waitForRunStatus } from '../support/runs.js';
import { startStack, type Stack } from '../support/stack.js';

type Sent = { status: number; body: Record<string, unknown> & { runId?: string; queuedMessageId?: string; position?: number; error?: string } };

describe('conversations: a chat goes on across runs (SPEC section 12)', function () {
  this.timeout(120_000);
  let tools: ToolServer;
  let stack: Stack;

  before(async () => {
    tools = await startToolServer();
    tools.behave('lookup', (call) => ({ body: { output: { found: (call.body.input as { q: string }).q } } }));
    stack = await startStack({
      TOOL_URL_ALLOWLIST: tools.url,
      CHAT_MAX_QUEUED_MESSAGES: '25',
      ACCOUNT_MAX_ACTIVE_RUNS: '200',
      RATE_LIMIT_PER_MINUTE: '100000',
    });
  });
  after(async () => {
    await stack.close();
    await tools.close();
  });

  const auth = (key = stack.alice.key) => ({ authorization: `Bearer ${key}` });
  const send = async (chatId: string, body: Record<string, unknown>, key = stack.alice.key): Promise<Sent> => {
    const res = await request(stack.api.app).post(`/api/chats/${chatId}/messages`).set(auth(key)).send(body);
    return { status: res.status, body: res.body };
  };
  const messagesOf = async (chatId: string) =>
    (await request(stack.api.app).get(`/api/chats/${chatId}/messages?limit=200`).set(auth())).body.messages as {
      role: string;
      parts: { type: string; text?: string; state?: string; errorText?: string }[];
      metadata: { runId: string | null; interrupted: boolean };
    }[];
  const textOf = (message: { parts: { type: string; text?: string }[] }) =>
    message.parts
      .filter((p) => p.type === 'text')
      .map((p) => p.text)
      .join('');
  const lookup = { name: 'lookup', inputSchema: { type: 'object', properties: { q: { type: 'string' } }, required: ['q'] }, url: '' };
  const firstRun = async (body: Record<string, unknown>) => {
    const runId = await startRunOk(stack.api.app, stack.alice.key, body);
    const run = await waitForRunStatus(stack.api.deps, runId, ['completed']);
    return { runId, chatId: run.chatId };
  };

  for (const model of ['openai/gpt-4o-mini', 'anthropic/claude-haiku-4-5']) {
    it(`three turns on ${model}: each request holds every earlier turn, tool calls and results in the provider's format, and is accepted`, async () => {
      const tool = { ...lookup, url: tools.toolUrl('lookup') };
      const { chatId } = await firstRun({ prompt: 'turn one [[call1:lookup:{"q":"paris"}]]', model, tools: [tool] });
      const second = await send(chatId, { prompt: 'turn two' });
      expect(second.status).to.equal(202);
      expect(second.body).to.include({ chatId, status: 'queued' });
      expect(second.body.messageId).to.be.a('string');
      await waitForRunStatus(stack.api.deps, second.body.runId!, ['completed']);
      const before = stack.fake.requests.length;
      const third = await send(chatId, { prompt: 'turn three' });
      const run = await waitForRunStatus(stack.api.deps, third.body.runId!, ['completed']);
      expect(run.model, 'the chat’s model, carried').to.equal(model);
      const sent = stack.fake.requests.slice(before)[0]!.body.messages as Record<string, unknown>[];
      const flat = JSON.stringify(sent);
      for (const piece of ['turn one', 'paris', 'turn two', 'turn three']) expect(flat).to.include(piece);
      expect(flat.indexOf('turn one')).to.be.below(flat.indexOf('turn two'));
      expect(flat.indexOf('turn two')).to.be.below(flat.indexOf('turn three'));
      if (model.startsWith('openai')) {
        expect(sent.map((m) => m.role)).to.deep.equal(['user', 'assistant', 'tool', 'assistant', 'user', 'assistant', 'user']);
      } else {
        const kinds = sent.map((m) => (Array.isArray(m.content) ? (m.content as { type: string }[]).map((b) => b.type).join('+') : `${m.role}`));
        expect(kinds.join(' ')).to.match(/tool_use.*tool_result/);
      }
      const transcript = await messagesOf(chatId);
      expect(transcript.map((m) => m.role)).to.deep.equal(['user', 'assistant', 'user', 'assistant', 'user', 'assistant']);
    });
  }

  it('carries settings from message to message: a message’s model stays the chat’s until another names one', async () => {
    const { chatId } = await firstRun({ prompt: 'hello', model: 'local/echo', system: 'be brief' });
    const switched = await send(chatId, { prompt: 'now openai', model: 'openai/gpt-4o-mini' });
    await waitForRunStatus(stack.api.deps, switched.body.runId!, ['completed']);
    const kept = await send(chatId, { prompt: 'still openai' });
    const run = await waitForRunStatus(stack.api.deps, kept.body.runId!, ['completed']);
    expect([run.model, run.system]).to.deep.equal(['openai/gpt-4o-mini', 'be brief']);
    const chat = (await request(stack.api.app).get(`/api/chats/${chatId}`).set(auth())).body;
    expect(chat).to.include({ chatId, status: 'idle', activeRunId: null, queuedMessages: 0, archived: false });
    expect(chat.settings).to.include({ model: 'openai/gpt-4o-mini', system: 'be brief' });
  });

  it('20 concurrent sends to an idle chat: exactly one run, 19 queued, and all 20 run in the order they were accepted', async () => {
    // Every run parks on a client tool until the test answers it, so all 20 are accepted while the first is active.
    const pick = { name: 'pick', inputSchema: { type: 'object' } };
    const { chatId } = await firstRun({ prompt: 'start', model: 'openai/gpt-4o-mini' });
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => send(chatId, { prompt: `burst ${i} [[call1:pick:{}]]`, tools: [pick] })));
    expect(answers.every((a) => a.status === 202)).to.equal(true);
    const started = answers.filter((a) => a.body.runId);
    const queued = answers.filter((a) => a.body.queued);
    expect([started.length, queued.length]).to.deep.equal([1, 19]);
    expect(queued.map((a) => a.body.position).sort((x, y) => x! - y!)).to.deep.equal(Array.from({ length: 19 }, (_, i) => i + 1));
    const byPosition = [...queued].sort((x, y) => x.body.position! - y.body.position!);
    const listed = (await request(stack.api.app).get(`/api/chats/${chatId}/queued-messages`).set(auth())).body.queuedMessages as { queuedMessageId: string }[];
    expect(listed.map((q) => q.queuedMessageId)).to.deep.equal(byPosition.map((a) => a.body.queuedMessageId));
    for (let turn = 0; turn < 20; turn++) {
      const parked = await waitFor(() => stack.api.deps.db.run.findFirst({ where: { chatId, status: 'requires_action' } }), { what: `turn ${turn} to park` });
      const pending = (await request(stack.api.app).get(`/api/chat/runs/${parked.id}`).set(auth())).body.pendingToolCalls as { toolCallId: string }[];
      await request(stack.api.app)
        .post(`/api/chat/runs/${parked.id}/tool-results`)
        .set(auth())
        .send({ results: pending.map((call) => ({ toolCallId: call.toolCallId, output: 'ok' })) });
      await waitForRunStatus(stack.api.deps, parked.id, ['completed']);
    }
    const users = (await messagesOf(chatId)).filter((m) => m.role === 'user').map(textOf);
    expect(users.slice(1)).to.deep.equal([started[0]!, ...byPosition].map((a) => `burst ${answers.indexOf(a)} [[call1:pick:{}]]`));
    const runs = await stack.api.deps.db.run.findMany({ where: { chatId }, orderBy: { seq: 'asc' } });
    expect(runs.map((r) => r.status)).to.deep.equal(Array(21).fill('completed'));
    expect(await stack.api.deps.db.queuedMessage.count({ where: { chatId } })).to.equal(0);
  });

  it('interrupt while a run streams: its partial answer is kept and marked, and the interrupting message’s run follows it', async () => {
    const { chatId } = await firstRun({ prompt: 'first', model: 'openai/gpt-4o-mini' });
    const long = await send(chatId, { prompt: `a long answer ${'word '.repeat(200)} [[slow:30]]` });
    await waitFor(async () => (await stack.api.deps.db.run.findUnique({ where: { id: long.body.runId! } }))?.status === 'running');
    await new Promise((resolve) => setTimeout(resolve, 300));
    const cut = await send(chatId, { prompt: 'stop, answer this instead', onBusy: 'interrupt' });
    expect(cut.status).to.equal(202);
    expect(cut.body).to.include({ queued: true, position: 1 });
    expect((await waitForRunStatus(stack.api.deps, long.body.runId!, ['cancelled'])).status).to.equal('cancelled');
    await waitFor(async () => (await stack.api.deps.db.run.count({ where: { chatId, status: 'completed' } })) === 2, { what: 'the next run' });
    const transcript = await messagesOf(chatId);
    expect(transcript.map((m) => [m.role, m.metadata.interrupted])).to.deep.equal([
      ['user', false],
      ['assistant', false],
      ['user', false],
      ['assistant', true],
      ['user', false],
      ['assistant', false],
    ]);
    expect(textOf(transcript[4]!)).to.equal('stop, answer this instead');
  });

  for (const model of ['openai/gpt-4o-mini', 'anthropic/claude-haiku-4-5']) {
    it(`interrupt while parked on a client tool (${model}): the pending call gets an interrupted result, and the next request is accepted`, async () => {
      const clientTool = { name: 'pick_color', inputSchema: { type: 'object' } };
      const { chatId } = await firstRun({ prompt: 'hi', model });
      const parked = await send(chatId, { prompt: 'pick one [[call1:pick_color:{}]]', tools: [clientTool] });
      await waitForRunStatus(stack.api.deps, parked.body.runId!, ['requires_action']);
      const interrupted = await request(stack.api.app).post(`/api/chats/${chatId}/interrupt`).set(auth());
      expect([interrupted.status, interrupted.body.runId, interrupted.body.status]).to.deep.equal([202, parked.body.runId, 'cancelled']);
      const parts = (await messagesOf(chatId)).at(-1)!.parts;
      expect(parts.find((p) => p.type === 'tool-pick_color')).to.include({ state: 'output-error', errorText: 'interrupted' });
      const before = stack.fake.requests.length;
      const next = await send(chatId, { prompt: 'never mind' });
      const run = await waitForRunStatus(stack.api.deps, next.body.runId!, ['completed', 'failed']);
      expect(run.status, `${run.errorCode}: ${run.errorMessage}`).to.equal('completed');
      expect(JSON.stringify(stack.fake.requests.slice(before)[0]!.body.messages)).to.include('interrupted');
      expect((await request(stack.api.app).post(`/api/chats/${chatId}/interrupt`).set(auth())).body.error, 'nothing to interrupt now').to.equal('chat_idle');
    });
  }

  it('refuses with reject (chat_busy, naming the run), past CHAT_MAX_QUEUED_MESSAGES, for an archived chat, and hides another account’s chat', async () => {
    const small = await startStack({ CHAT_MAX_QUEUED_MESSAGES: '2', ACCOUNT_MAX_ACTIVE_RUNS: '4' });
    try {
      const { runId, chatId } = await startParkedRun(small.api.app, small.api.deps, small.alice.key);
      const post = (body: Record<string, unknown>, key = small.alice.key) =>
        request(small.api.app)
          .post(`/api/chats/${chatId}/messages`)
          .set({ authorization: `Bearer ${key}` })
          .send(body);
      const rejected = await post({ prompt: 'now?', onBusy: 'reject' });
      expect([rejected.status, rejected.body.error, rejected.body.details]).to.deep.equal([409, 'chat_busy', { activeRunId: runId }]);
      expect((await post({ prompt: 'one' })).body).to.include({ queued: true, position: 1 });
      expect((await post({ prompt: 'two' })).body).to.include({ queued: true, position: 2 });
      const full = await post({ prompt: 'three' });
      expect([full.status, full.body.error]).to.deep.equal([429, 'chat_queue_full']);
      // The parked run, the two queued messages and one more run are the account's 4 active runs (ACCOUNT_MAX_ACTIVE_RUNS).
      const newRun = () =>
        request(small.api.app)
          .post('/api/chat/runs')
          .set({ authorization: `Bearer ${small.alice.key}` })
          .send({ prompt: 'another chat' });
      expect((await newRun()).status).to.equal(202);
      const over = await newRun();
      expect([over.status, over.body.error], 'queued messages count towards ACCOUNT_MAX_ACTIVE_RUNS').to.deep.equal([429, 'too_many_active_runs']);
      const bob = await createAccount(small.api.deps.db);
      expect((await post({ prompt: 'mine?' }, bob.key)).status).to.equal(404);
      expect(
        (
          await request(small.api.app)
            .get(`/api/chats/${chatId}`)
            .set({ authorization: `Bearer ${bob.key}` })
        ).status,
      ).to.equal(404);

      const archived = await request(small.api.app)
        .post(`/api/chats/${chatId}/archive`)
        .set({ authorization: `Bearer ${small.alice.key}` });
      expect(archived.body).to.include({ archived: true, queuedMessages: 0 });
      await waitForRunStatus(small.api.deps, runId, ['cancelled']);
      expect((await post({ prompt: 'hello?' })).body.error).to.equal('chat_archived');
      const list = (archivedFlag: string) =>
        request(small.api.app)
          .get(`/api/chats?archived=${archivedFlag}`)
          .set({ authorization: `Bearer ${small.alice.key}` });
      expect((await list('true')).body.chats.map((c: { chatId: string }) => c.chatId)).to.include(chatId);
      expect((await list('false')).body.chats.map((c: { chatId: string }) => c.chatId)).not.to.include(chatId);
      await request(small.api.app)
        .post(`/api/chats/${chatId}/unarchive`)
        .set({ authorization: `Bearer ${small.alice.key}` });
      const again = await post({ prompt: 'back' });
      expect(again.status).to.equal(202);
      expect(again.body.runId, 'an idle chat starts a run at once').to.be.a('string');
      const metrics = (await request(small.api.app).get('/metrics')).text;
      for (const outcome of ['started', 'queued', 'rejected'])
        expect(metrics).to.match(new RegExp(`runyard_chat_messages_total\\{outcome="${outcome}",process="api"\\} [1-9]`));
      expect(await small.api.deps.db.run.count({ where: { chatId } }), 'the dropped messages never ran').to.equal(2);
    } finally {
      await small.close();
    }
  });

  it('lists, deletes and promotes queued messages; the chat’s stream is its active run’s, 204 when idle', async () => {
    const { chatId } = await firstRun({ prompt: 'first', model: 'openai/gpt-4o-mini' });
    const base = await stack.api.url();
    expect((await readSse(`${base}/api/chats/${chatId}/stream`, auth())).res.status, 'idle').to.equal(204);
    const busy = await send(chatId, { prompt: 'busy [[call1:hold:{}]]', tools: [HOLD_TOOL] });
    await waitForRunStatus(stack.api.deps, busy.body.runId!, ['requires_action']);
    const a = await send(chatId, { prompt: 'a' });
    const b = await send(chatId, { prompt: 'b' });
    const c = await send(chatId, { prompt: 'c', metadata: { ticket: 'T-1' }, priority: 'high' });
    const queue = async () =>
      (
        (await request(stack.api.app).get(`/api/chats/${chatId}/queued-messages`).set(auth())).body.queuedMessages as {
          queuedMessageId: string;
          metadata: unknown;
        }[]
      ).map((q) => q.queuedMessageId);
    expect(await queue()).to.deep.equal([a.body.queuedMessageId, b.body.queuedMessageId, c.body.queuedMessageId]);
    expect((await request(stack.api.app).delete(`/api/chats/${chatId}/queued-messages/${b.body.queuedMessageId}`).set(auth())).status).to.equal(204);
    const streamed = await readSse(`${base}/api/chats/${chatId}/stream`, auth(), { until: (e) => e.data.includes('tool-input-available') });
    expect(streamed.res.status).to.equal(200);
    const promoted = await request(stack.api.app).post(`/api/chats/${chatId}/queued-messages/${c.body.queuedMessageId}/promote`).set(auth());
    expect(promoted.status).to.equal(202);
    await waitForRunStatus(stack.api.deps, busy.body.runId!, ['cancelled']);
    await waitFor(
      async () =>
        (await stack.api.deps.db.queuedMessage.count({ where: { chatId } })) === 0 &&
        (await stack.api.deps.db.run.count({ where: { chatId, status: 'completed' } })) === 3,
      {
        what: 'c then a to run',
      },
    );
    const users = (await messagesOf(chatId)).filter((m) => m.role === 'user').map(textOf);
    expect(users).to.deep.equal(['first', 'busy [[call1:hold:{}]]', 'c', 'a']);
    expect(
      (await request(stack.api.app).delete(`/api/chats/${chatId}/queued-messages/${a.body.queuedMessageId}`).set(auth())).body.error,
      'became a run',
    ).to.equal('queued_message_not_found');
    const cRun = await stack.api.deps.db.run.findFirst({ where: { queuedMessageId: c.body.queuedMessageId } });
    expect([cRun?.priority, cRun?.metadata]).to.deep.equal(['high', { ticket: 'T-1' }]);
  });

  it('lets a stream token of the active run read the chat’s stream (?token=), and answers 204 to one of an earlier run', async () => {
    const base = await stack.api.url();
    const { runId: earlier, chatId } = await firstRun({ prompt: 'earlier', model: 'openai/gpt-4o-mini' });
    const active = await send(chatId, { prompt: 'hold on [[call1:hold:{}]]', tools: [HOLD_TOOL] });
    await waitForRunStatus(stack.api.deps, active.body.runId!, ['requires_action']);
    const mint = async (runId: string) => (await request(stack.api.app).post(`/api/chat/runs/${runId}/stream-token`).set(auth())).body.token as string;
    const reading = await readSse(
      `${base}/api/chats/${chatId}/stream?token=${await mint(active.body.runId!)}`,
      {},
      { until: (e) => e.data.includes('requires_action') },
    );
    expect(reading.res.status).to.equal(200);
    expect(reading.events.some((e) => e.data.includes('requires_action'))).to.equal(true);
    expect((await readSse(`${base}/api/chats/${chatId}/stream?token=${await mint(earlier)}`, {})).res.status, 'not the active run').to.equal(204);
    const bob = await createAccount(stack.api.deps.db);
    expect((await readSse(`${base}/api/chats/${chatId}/stream`, auth(bob.key))).res.status, 'another account').to.equal(404);
  });

  it('holds ACCOUNT_MAX_ACTIVE_RUNS exactly for chat messages: 20 concurrent messages to 20 idle chats with a limit of 5 start 5 runs', async () => {
    const alice = await createAccount(stack.api.deps.db);
    const chats = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const runId = await startRunOk(stack.api.app, alice.key, { prompt: `chat ${i}` });
        return (await waitForRunStatus(stack.api.deps, runId, ['completed'])).chatId;
      }),
    );
    // The same database, a limit of 5 and a queue prefix of its own that no worker reads: what starts stays active.
    const limited = startApi({ ACCOUNT_MAX_ACTIVE_RUNS: '5', RATE_LIMIT_PER_MINUTE: '100000' });
    try {
      const answers = await Promise.all(
        chats.map((chatId) => request(limited.app).post(`/api/chats/${chatId}/messages`).set(auth(alice.key)).send({ prompt: 'once more' })),
      );
      const statuses = answers.map((res) => res.status).sort();
      expect(statuses.filter((status) => status === 202).length, JSON.stringify(statuses)).to.equal(5);
      expect(statuses.filter((status) => status === 429).length).to.equal(15);
      const active = await stack.api.deps.db.run.count({ where: { accountId: alice.accountId, status: { in: ['queued', 'running', 'requires_action'] } } });
      expect(active).to.equal(5);
      for (const res of answers.filter((res) => res.status === 202)) {
        await request(limited.app).post(`/api/chat/runs/${res.body.runId}/cancel`).set(auth(alice.key));
      }
    } finally {
      await limited.close();
    }
  });

  it('lets a stream token (or a run key) read its chat’s messages up to its own run’s, never later turns', async () => {
    const { runId: first, chatId } = await firstRun({ prompt: 'first turn', model: 'openai/gpt-4o-mini' });
    const token = (await request(stack.api.app).post(`/api/chat/runs/${first}/stream-token`).set(auth())).body.token as string;
    const second = await send(chatId, { prompt: 'second turn, private' });
    await waitForRunStatus(stack.api.deps, second.body.runId!, ['completed']);
    expect((await messagesOf(chatId)).length, 'the account key reads both turns').to.equal(4);
    const read = await request(stack.api.app)
      .get(`/api/chats/${chatId}/messages?limit=200`)
      .set({ authorization: `Bearer ${token}` });
    expect(read.status).to.equal(200);
    const seen = read.body.messages as { metadata: { runId: string } }[];
    expect(seen.map((m) => m.metadata.runId)).to.deep.equal([first, first]);
    expect(JSON.stringify(read.body)).to.not.include('private');
  });

  it('erases a chat now (DELETE): its active run interrupted, then nothing of it left in Postgres or Redis, 404 everywhere', async () => {
    const { runId: done, chatId } = await firstRun({ prompt: 'remember me', model: 'openai/gpt-4o-mini' });
    const active = await send(chatId, { prompt: 'hold on [[call1:hold:{}]]', tools: [HOLD_TOOL] });
    await waitForRunStatus(stack.api.deps, active.body.runId!, ['requires_action']);
    await send(chatId, { prompt: 'queued' });
    const token = (await request(stack.api.app).post(`/api/chat/runs/${done}/stream-token`).set(auth())).body.token as string;
    const runIds = [done, active.body.runId!];
    const bob = await createAccount(stack.api.deps.db);
    expect((await request(stack.api.app).delete(`/api/chats/${chatId}`).set(auth(bob.key))).status, 'another account’s').to.equal(404);
    const erased = await request(stack.api.app).delete(`/api/chats/${chatId}`).set(auth());
    expect([erased.status, erased.body]).to.deep.equal([202, { chatId, deleted: true, runs: 2 }]);
    for (const path of [`/api/chats/${chatId}`, `/api/chats/${chatId}/messages`, `/api/chat/runs/${done}`, `/api/chat/runs/${active.body.runId}`]) {
      expect((await request(stack.api.app).get(path).set(auth())).status, path).to.equal(404);
    }
    expect(
      (
        await request(stack.api.app)
          .get(`/api/chat/runs/${done}`)
          .set({ authorization: `Bearer ${token}` })
      ).status,
      'its stream token',
    ).to.equal(401);
    const { db } = stack.api.deps;
    const left = {
      chats: await db.chat.count({ where: { id: chatId } }),
      runs: await db.run.count({ where: { id: { in: runIds } } }),
      messages: await db.message.count({ where: { chatId } }),
      queued: await db.queuedMessage.count({ where: { chatId } }),
      keys: await db.apiKey.count({ where: { runId: { in: runIds } } }),
      steps: await db.runStep.count({ where: { runId: { in: runIds } } }),
      attempts: await db.runAttempt.count({ where: { runId: { in: runIds } } }),
    };
    expect(left).to.deep.equal({ chats: 0, runs: 0, messages: 0, queued: 0, keys: 0, steps: 0, attempts: 0 });
    const redisKeys = (await Promise.all(runIds.map((id) => stack.api.deps.redis.keys(`${stack.api.prefix}*${id}*`)))).flat();
    expect(redisKeys).to.deep.equal([]);
  });
});
