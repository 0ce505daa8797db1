import { expect } from 'chai';
import request from 'supertest';
import { cleanTitle } from '../../worker/outbox/titleDispatcher.js';
import { createAccount } from '../support/factories.js';
import { waitFor } from '../support/harness.js';
import { startRunOk, waitForRunStatus } from '../support/runs.js';
import { startStack, type Stack } from '../support/stack.js';

describe('chat titles (SPEC section 19)', function () {
  this.timeout(60_000);
  // One stack at a time: every worker of the database takes title jobs (as it does promotions).
  let stack: Stack | undefined;
  afterEach(async () => {
    await stack?.close();
    stack = undefined;
  });

  const titleOf = async (chatId: string) => (await stack!.api.deps.db.chat.findUniqueOrThrow({ where: { id: chatId } })).title;

  it('titles a chat after its first run with one model call, charged to the account; a title given or set by a person stays; POST …/title makes a new one', async () => {
    stack = await startStack({ CHAT_TITLES: 'true' });
    const alice = await createAccount(stack.api.deps.db);
    const runId = await startRunOk(stack.api.app, alice.key, { prompt: 'How do I bake sourdough bread at home with a starter?', model: 'openai/gpt-4o-mini' });
    const run = await waitForRunStatus(stack.api.deps, runId, ['completed']);
    const title = await waitFor(() => titleOf(run.chatId), { what: 'a generated title' });
    expect(title.length).to.be.at.most(80);
    expect(title).to.include('sourdough');
    const titleCall = stack.fake.requests.find((r) => JSON.stringify(r.body).includes('short title'));
    expect(titleCall, 'one call of the chat’s model').to.not.equal(undefined);
    const usage = run.usage as { inputTokens: number; outputTokens: number };
    const consumed = (await request(stack.api.app).get('/api/usage').set(alice.auth)).body.consumed.tokens as number;
    expect(consumed, 'the title call is charged too').to.be.greaterThan(usage.inputTokens + usage.outputTokens);
    expect(await stack.api.deps.db.chatTitleJob.count({ where: { chatId: run.chatId } })).to.equal(0);
    // The usage reports show it as source `title`, with the tokens the account was charged beyond the run.
    const bySource = (await request(stack.api.app).get('/api/usage/report?groupBy=source').set(alice.auth)).body.rows as {
      source: string;
      inputTokens: number;
      outputTokens: number;
    }[];
    const titled = bySource.find((row) => row.source === 'title');
    expect(titled, JSON.stringify(bySource)).to.not.equal(undefined);
    expect(titled!.inputTokens + titled!.outputTokens).to.equal(consumed - usage.inputTokens - usage.outputTokens);

    const named = await startRunOk(stack.api.app, alice.key, { prompt: 'keep my name', title: 'Mine' });
    const namedRun = await waitForRunStatus(stack.api.deps, named, ['completed']);
    expect(await stack.api.deps.db.chatTitleJob.count({ where: { chatId: namedRun.chatId } })).to.equal(0);
    expect(await titleOf(namedRun.chatId)).to.equal('Mine');

    expect((await request(stack.api.app).patch(`/api/chats/${run.chatId}`).set(alice.auth).send({ title: 'Bread' })).status).to.equal(200);
    const next = await request(stack.api.app).post(`/api/chats/${run.chatId}/messages`).set(alice.auth).send({ prompt: 'and rye?' });
    await waitForRunStatus(stack.api.deps, next.body.runId, ['completed']);
    expect(await titleOf(run.chatId), 'renamed: no generated title after that').to.equal('Bread');
    const again = await request(stack.api.app).post(`/api/chats/${run.chatId}/title`).set(alice.auth);
    expect(again.status).to.equal(202);
    await waitFor(async () => (await titleOf(run.chatId)) !== 'Bread', { what: 'the new title' });
  });

  it('never fails a run for its title: a title call that fails leaves the run completed and no title', async () => {
    const broken = await startStack({ CHAT_TITLES: 'true', TITLE_MODEL: 'anthropic/claude-haiku-4-5', ANTHROPIC_BASE_URL: 'http://127.0.0.1:1' });
    stack = broken;
    {
      const bob = await createAccount(broken.api.deps.db);
      const runId = await startRunOk(broken.api.app, bob.key, { prompt: 'untitled', model: 'openai/gpt-4o-mini' });
      const run = await waitForRunStatus(broken.api.deps, runId, ['completed']);
      await waitFor(async () => ((await broken.api.deps.db.chatTitleJob.findUnique({ where: { chatId: run.chatId } }))?.attempts ?? 0) >= 1, {
        what: 'a title try',
      });
      expect((await broken.api.deps.db.run.findUniqueOrThrow({ where: { id: runId } })).status).to.equal('completed');
      expect((await broken.api.deps.db.chat.findUniqueOrThrow({ where: { id: run.chatId } })).title).to.equal(null);
    }
  });

  it('cleans a model’s answer into a title of at most 80 characters', () => {
    expect(cleanTitle('Title: "Baking Bread"\nmore')).to.equal('Baking Bread');
    expect(cleanTitle('x'.repeat(200))).to.have.length(80);
  });
});
