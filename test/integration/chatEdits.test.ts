import { expect } from 'chai';
import request from 'supertest';
import { createAccount, type TestAccount } from '../support/factories.js';
import { waitFor } from '../support/harness.js';
import { startRunOk, waitForRunStatus } from '../support/runs.js';
import { startStack, type Stack } from '../support/stack.js';

type Message = { id: string; role: string; parts: { type: string; text?: string }[]; metadata: { runId: string | null } };

describe('chats people edit: edit, regenerate, status, labels (SPEC section 19)', function () {
  this.timeout(120_000);
  let stack: Stack;
  before(async () => {
    stack = await startStack({ ACCOUNT_MAX_ACTIVE_RUNS: '200', RATE_LIMIT_PER_MINUTE: '100000' });
  });
  after(() => stack.close());

  const textOf = (message: Message) =>
    message.parts
      .filter((p) => p.type === 'text')
      .map((p) => p.text)
      .join('');
  const history = async (account: TestAccount, chatId: string) =>
    (await request(stack.api.app).get(`/api/chats/${chatId}/messages?limit=200`).set(account.auth)).body.messages as Message[];
  const chatOf = async (account: TestAccount, chatId: string) => (await request(stack.api.app).get(`/api/chats/${chatId}`).set(account.auth)).body;
  const idle = (account: TestAccount, chatId: string) =>
    waitFor(async () => ['idle', 'error'].includes((await chatOf(account, chatId)).status), { what: 'the chat to be idle' });
  /** A chat of three finished turns on the fake OpenAI model. */
  const threeTurns = async (account: TestAccount) => {
    const first = await startRunOk(stack.api.app, account.key, { prompt: 'turn one alpha', model: 'openai/gpt-4o-mini' });
    const { chatId } = await waitForRunStatus(stack.api.deps, first, ['completed']);
    for (const prompt of ['turn two beta', 'turn three gamma']) {
      const sent = await request(stack.api.app).post(`/api/chats/${chatId}/messages`).set(account.auth).send({ prompt });
      await waitForRunStatus(stack.api.deps, sent.body.runId, ['completed']);
    }
    return chatId;
  };

  it('edits the first of three turns: one user message and its new answer remain, the model sees nothing of the rest, their usage stays charged', async () => {
    const alice = await createAccount(stack.api.deps.db);
    const chatId = await threeTurns(alice);
    const before = await history(alice, chatId);
    expect(before.map((m) => m.role)).to.deep.equal(['user', 'assistant', 'user', 'assistant', 'user', 'assistant']);
    const usedBefore = (await request(stack.api.app).get('/api/usage').set(alice.auth)).body.consumed.tokens as number;
    const requestsBefore = stack.fake.requests.length;

    const edited = await request(stack.api.app)
      .patch(`/api/chats/${chatId}/messages/${before[0]!.id}`)
      .set(alice.auth)
      .send({ prompt: 'turn one, edited delta' });
    expect(edited.status, JSON.stringify(edited.body)).to.equal(202);
    expect(edited.body.messageId).to.be.a('string').and.not.equal(before[0]!.id);
    await waitForRunStatus(stack.api.deps, edited.body.runId, ['completed']);
    const after = await history(alice, chatId);
    expect(after.map((m) => [m.role, m.role === 'user' ? textOf(m) : m.metadata.runId])).to.deep.equal([
      ['user', 'turn one, edited delta'],
      ['assistant', edited.body.runId],
    ]);
    const sent = JSON.stringify(stack.fake.requests.slice(requestsBefore).map((r) => r.body.messages));
    expect(sent).to.include('edited delta');
    for (const gone of ['alpha', 'beta', 'gamma']) expect(sent, gone).not.to.include(gone);
    const usedAfter = (await request(stack.api.app).get('/api/usage').set(alice.auth)).body.consumed.tokens as number;
    expect(usedAfter, 'the discarded turns stay charged').to.be.greaterThan(usedBefore);
    const assistant = after[1]!;
    const notEditable = await request(stack.api.app).patch(`/api/chats/${chatId}/messages/${assistant.id}`).set(alice.auth).send({ prompt: 'x' });
    expect([notEditable.status, notEditable.body.error]).to.deep.equal([400, 'message_not_editable']);
    const gone = await request(stack.api.app).patch(`/api/chats/${chatId}/messages/${before[2]!.id}`).set(alice.auth).send({ prompt: 'x' });
    expect([gone.status, gone.body.error], 'a message that already left the history').to.deep.equal([404, 'message_not_found']);
  });

  it('regenerates twice: a new answer each time, one user message, no duplicate', async () => {
    const alice = await createAccount(stack.api.deps.db);
    const first = await startRunOk(stack.api.app, alice.key, { prompt: 'tell me once' });
    const { chatId } = await waitForRunStatus(stack.api.deps, first, ['completed']);
    const runIds = [first];
    for (let i = 0; i < 2; i++) {
      const again = await request(stack.api.app).post(`/api/chats/${chatId}/regenerate`).set(alice.auth).send({});
      expect(again.status, JSON.stringify(again.body)).to.equal(202);
      await waitForRunStatus(stack.api.deps, again.body.runId, ['completed']);
      runIds.push(again.body.runId);
    }
    const messages = await history(alice, chatId);
    expect(messages.map((m) => m.role)).to.deep.equal(['user', 'assistant']);
    expect(textOf(messages[0]!)).to.equal('tell me once');
    expect(messages[1]!.metadata.runId).to.equal(runIds[2]);
    expect(new Set(runIds).size).to.equal(3);
  });

  it('starts exactly one run under 10 concurrent edits of one idle chat; the others are told the message left the history', async () => {
    const alice = await createAccount(stack.api.deps.db);
    const first = await startRunOk(stack.api.app, alice.key, { prompt: 'edit me' });
    const { chatId } = await waitForRunStatus(stack.api.deps, first, ['completed']);
    const [question] = await history(alice, chatId);
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        request(stack.api.app)
          .patch(`/api/chats/${chatId}/messages/${question!.id}`)
          .set(alice.auth)
          .send({ prompt: `edit ${i}` }),
      ),
    );
    const started = answers.filter((res) => res.status === 202);
    expect(started.length, JSON.stringify(answers.map((res) => res.status))).to.equal(1);
    expect(answers.filter((res) => res.status === 404).map((res) => res.body.error)).to.deep.equal(Array(9).fill('message_not_found'));
    await waitForRunStatus(stack.api.deps, started[0]!.body.runId, ['completed']);
    expect(await stack.api.deps.db.run.count({ where: { chatId } })).to.equal(2);
  });

  it('edits a busy chat: its run is interrupted first and the edit answered; queued messages follow', async () => {
    const alice = await createAccount(stack.api.deps.db);
    const parked = await startRunOk(stack.api.app, alice.key, {
      prompt: 'hold on [[call1:hold:{}]]',
      model: 'openai/gpt-4o-mini',
      tools: [{ name: 'hold', inputSchema: { type: 'object' } }],
    });
    const { chatId } = await waitForRunStatus(stack.api.deps, parked, ['requires_action']);
    const queued = await request(stack.api.app).post(`/api/chats/${chatId}/messages`).set(alice.auth).send({ prompt: 'after the edit' });
    expect(queued.body.queued).to.equal(true);
    const [question] = await history(alice, chatId);
    const edited = await request(stack.api.app).patch(`/api/chats/${chatId}/messages/${question!.id}`).set(alice.auth).send({ prompt: 'instead, this' });
    expect(edited.status).to.equal(202);
    expect(edited.body.runId, JSON.stringify(edited.body)).to.be.a('string');
    await idle(alice, chatId);
    const texts = (await history(alice, chatId)).filter((m) => m.role === 'user').map(textOf);
    expect(texts).to.deep.equal(['instead, this', 'after the edit']);
  });

  it('shows a chat whose last run failed as error with lastError, cleared by the next run; renames, labels and filters chats', async () => {
    const alice = await createAccount(stack.api.deps.db);
    const failing = await startRunOk(stack.api.app, alice.key, { prompt: 'break [[fail:400]]', model: 'openai/gpt-4o-mini', title: 'Broken one' });
    const run = await waitForRunStatus(stack.api.deps, failing, ['failed']);
    const broken = await chatOf(alice, run.chatId);
    expect(broken.status).to.equal('error');
    expect(broken.lastError).to.include({ runId: failing, code: run.errorCode });
    const fine = await startRunOk(stack.api.app, alice.key, { prompt: 'fine', title: 'Fine one' });
    const fineChat = (await waitForRunStatus(stack.api.deps, fine, ['completed'])).chatId;

    const renamed = await request(stack.api.app)
      .patch(`/api/chats/${fineChat}`)
      .set(alice.auth)
      .send({ title: 'Quarterly report', labels: { team: 'sales' } });
    expect(renamed.status).to.equal(200);
    expect(renamed.body).to.include({ title: 'Quarterly report', status: 'idle' });
    expect(renamed.body.labels).to.deep.equal({ team: 'sales' });
    const list = async (query: string) =>
      ((await request(stack.api.app).get(`/api/chats?${query}`).set(alice.auth)).body.chats as { chatId: string }[]).map((c) => c.chatId);
    expect(await list('q=QUARTERLY')).to.deep.equal([fineChat]);
    expect(await list('label=team:sales')).to.deep.equal([fineChat]);
    expect(await list('status=error')).to.deep.equal([run.chatId]);
    expect(await list('status=idle')).to.deep.equal([fineChat]);
    expect((await request(stack.api.app).get('/api/chats?label=nocolon').set(alice.auth)).status).to.equal(400);
    const tooMany = Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`k${i}`, 'v']));
    expect((await request(stack.api.app).patch(`/api/chats/${fineChat}`).set(alice.auth).send({ labels: tooMany })).status).to.equal(400);

    const next = await request(stack.api.app).post(`/api/chats/${run.chatId}/messages`).set(alice.auth).send({ prompt: 'try again' });
    await waitForRunStatus(stack.api.deps, next.body.runId, ['completed']);
    const cleared = await chatOf(alice, run.chatId);
    expect([cleared.status, cleared.lastError]).to.deep.equal(['idle', null]);
  });
});
