import { expect } from 'chai';
import request from 'supertest';
import { createAccount, type TestAccount } from '../support/factories.js';
import { answerPendingCalls, startParkedRun, startRunOk, waitForRunStatus } from '../support/runs.js';
import { waitFor } from '../support/harness.js';
import { createAccountKey } from '../../shared/accounts/apiKeys.js';
import { startStack, type Stack } from '../support/stack.js';

const ADMIN = 'admin-token-0123456789abcdef';

type Metadata = {
  model: string;
  usage: { inputTokens: number; outputTokens: number; cachedInputTokens: number; reasoningTokens: number } | null;
  costMicros: number | null;
};

describe('usage reports (SPEC section 21)', function () {
  this.timeout(60_000);
  let stack: Stack;
  before(async () => {
    stack = await startStack({ ADMIN_TOKEN: ADMIN });
  });
  after(() => stack.close());

  /** The per-message figures of an account's chats, summed by model: what a report must equal. */
  const perMessage = async (account: TestAccount, chatIds: string[]) => {
    const sums = new Map<string, { inputTokens: number; outputTokens: number; cachedInputTokens: number; reasoningTokens: number; costMicros: number }>();
    for (const chatId of chatIds) {
      const messages = (await request(stack.api.app).get(`/api/chats/${chatId}/messages?limit=200`).set(account.auth)).body.messages as {
        role: string;
        metadata: Metadata;
      }[];
      for (const { role, metadata } of messages) {
        if (role !== 'assistant' || !metadata.usage) continue;
        const sum = sums.get(metadata.model) ?? { inputTokens: 0, outputTokens: 0, cachedInputTokens: 0, reasoningTokens: 0, costMicros: 0 };
        sum.inputTokens += metadata.usage.inputTokens;
        sum.outputTokens += metadata.usage.outputTokens;
        sum.cachedInputTokens += metadata.usage.cachedInputTokens;
        sum.reasoningTokens += metadata.usage.reasoningTokens;
        sum.costMicros += metadata.costMicros ?? 0;
        sums.set(metadata.model, sum);
      }
    }
    return sums;
  };

  it('sums an account’s model calls by model, chat, day and source, equal to the per-message figures; CSV with a header; the admin report by account', async () => {
    const alice = await createAccount(stack.api.deps.db);
    const bob = await createAccount(stack.api.deps.db);
    const chatIds: string[] = [];
    for (const body of [
      { prompt: 'one two three', model: 'openai/gpt-4o-mini' },
      { prompt: 'four five', model: 'anthropic/claude-haiku-4-5' },
      { prompt: 'six', model: 'local/echo' },
    ]) {
      const runId = await startRunOk(stack.api.app, alice.key, body);
      chatIds.push((await waitForRunStatus(stack.api.deps, runId, ['completed'])).chatId);
    }
    await waitForRunStatus(stack.api.deps, await startRunOk(stack.api.app, bob.key, { prompt: 'not alice', model: 'openai/gpt-4o-mini' }), ['completed']);

    const byModel = await request(stack.api.app).get('/api/usage/report?groupBy=model').set(alice.auth);
    expect(byModel.status, JSON.stringify(byModel.body)).to.equal(200);
    const expected = await perMessage(alice, chatIds);
    expect(byModel.body.rows).to.deep.equal([...expected.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([model, sums]) => ({ model, ...sums })));
    expect(byModel.body.groupBy).to.equal('model');

    const byChat = (await request(stack.api.app).get('/api/usage/report?groupBy=chat').set(alice.auth)).body.rows as { chat: string }[];
    expect(byChat.map((row) => row.chat).sort()).to.deep.equal([...chatIds].sort());
    const byDay = (await request(stack.api.app).get('/api/usage/report?groupBy=day').set(alice.auth)).body.rows as { day: string; costMicros: number }[];
    expect(byDay).to.have.length(1);
    expect(byDay[0]!.costMicros).to.equal([...expected.values()].reduce((sum, row) => sum + row.costMicros, 0));
    expect(
      ((await request(stack.api.app).get('/api/usage/report?groupBy=source').set(alice.auth)).body.rows as { source: string }[]).map((r) => r.source),
    ).to.deep.equal(['run']);

    const csv = await request(stack.api.app)
      .get('/api/usage/report?groupBy=model')
      .set({ ...alice.auth, accept: 'text/csv' });
    expect(csv.headers['content-type']).to.match(/^text\/csv/);
    const lines = csv.text.trim().split('\n');
    expect(lines[0]).to.equal('model,inputTokens,cachedInputTokens,outputTokens,reasoningTokens,costMicros');
    expect(lines).to.have.length(expected.size + 1);

    const future = await request(stack.api.app).get('/api/usage/report?groupBy=model&from=2099-01-01&to=2099-02-01').set(alice.auth);
    expect([future.status, future.body.rows]).to.deep.equal([200, []]);
    expect((await request(stack.api.app).get('/api/usage/report?groupBy=team').set(alice.auth)).status).to.equal(400);
    expect((await request(stack.api.app).get('/api/usage/report?groupBy=model&from=2030-01-01&to=2020-01-01').set(alice.auth)).status).to.equal(400);

    const admin = await request(stack.api.app)
      .get('/api/admin/usage/report?groupBy=account')
      .set({ authorization: `Bearer ${ADMIN}` });
    expect(admin.status).to.equal(200);
    const aliceName = (await stack.api.deps.db.account.findUniqueOrThrow({ where: { id: alice.accountId } })).name;
    const aliceRow = (admin.body.rows as { account: string; costMicros: number }[]).find((row) => row.account === aliceName);
    expect(aliceRow?.costMicros).to.equal(byDay[0]!.costMicros);
  });

  it('attributes usage to the account key that sent each run and message, a queued message’s run too (groupBy=key)', async () => {
    const carol = await createAccount(stack.api.deps.db);
    const { name } = await stack.api.deps.db.account.findUniqueOrThrow({ where: { id: carol.accountId } });
    const second = await createAccountKey(stack.api.deps.db, name);
    const secondAuth = { authorization: `Bearer ${second.rawKey}` };
    const firstRun = await startRunOk(stack.api.app, carol.key, { prompt: 'from the first key', model: 'openai/gpt-4o-mini' });
    const { chatId } = await waitForRunStatus(stack.api.deps, firstRun, ['completed']);
    // The second key continues the chat; a message it sends while the chat is busy is queued and runs later.
    const parked = await startParkedRun(stack.api.app, stack.api.deps, second.rawKey);
    const queued = await request(stack.api.app).post(`/api/chats/${parked.chatId}/messages`).set(secondAuth).send({ prompt: 'queued by the second key' });
    expect(queued.body.queued).to.equal(true);
    await answerPendingCalls(stack.api.app, second.rawKey, parked.runId);
    const message = await request(stack.api.app).post(`/api/chats/${chatId}/messages`).set(secondAuth).send({ prompt: 'second key, first chat' });
    await waitForRunStatus(stack.api.deps, message.body.runId, ['completed']);
    const promoted = await waitFor(() => stack.api.deps.db.run.findFirst({ where: { queuedMessageId: queued.body.queuedMessageId } }), {
      what: 'the queued run',
    });
    await waitForRunStatus(stack.api.deps, promoted.id, ['completed']);
    expect(promoted.sentByKeyId).to.equal(second.id);

    const rows = (await request(stack.api.app).get('/api/usage/report?groupBy=key').set(carol.auth)).body.rows as { key: string; costMicros: number }[];
    const firstKeyId = (await stack.api.deps.db.run.findUniqueOrThrow({ where: { id: firstRun } })).sentByKeyId;
    expect(rows.map((row) => row.key).sort()).to.deep.equal([firstKeyId, second.id].sort());
    const byModel = (await request(stack.api.app).get('/api/usage/report?groupBy=model').set(carol.auth)).body.rows as { costMicros: number }[];
    const total = (list: { costMicros: number }[]) => list.reduce((sum, row) => sum + row.costMicros, 0);
    expect(total(rows), 'the same calls, grouped otherwise').to.equal(total(byModel));
  });
});
