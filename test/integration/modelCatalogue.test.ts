import { expect } from 'chai';
import request from 'supertest';
import { createAccount } from '../support/factories.js';
import { postRun, startRunOk, waitForRunStatus } from '../support/runs.js';
import { startStack, type Stack } from '../support/stack.js';

const ADMIN = 'admin-token-0123456789abcdef';

describe('the model catalogue (SPEC section 21)', function () {
  this.timeout(60_000);
  let stack: Stack;
  const suffix = Math.random().toString(36).slice(2, 8);
  const priced = `openai/acme-priced-${suffix}`;
  const unpriced = `openai/acme-unpriced-${suffix}`;
  const admin = { authorization: `Bearer ${ADMIN}` };
  before(async () => {
    stack = await startStack({ ADMIN_TOKEN: ADMIN });
  });
  after(async () => {
    for (const model of [priced, unpriced, 'openai/gpt-4.1-nano']) await request(stack.api.app).delete(`/api/admin/models/${model}`).set(admin);
    await stack.close();
  });

  const put = (model: string, body: Record<string, unknown>) => request(stack.api.app).put(`/api/admin/models/${model}`).set(admin).send(body);

  it('lists the built-in models with their prices, windows and what they read; an operator row prices a new model and its calls are charged at it', async () => {
    const alice = await createAccount(stack.api.deps.db);
    const listed = await request(stack.api.app).get('/api/models').set(alice.auth);
    expect(listed.status).to.equal(200);
    const mini = (listed.body.models as { id: string }[]).find((model) => model.id === 'openai/gpt-4o-mini');
    expect(mini).to.deep.include({ enabled: true, source: 'built-in', contextTokens: 128_000, reads: { images: true, pdf: true } });
    expect((listed.body.models as { id: string; default: boolean }[]).find((model) => model.default)?.id).to.equal('local/echo');

    const set = await put(priced, { inputUsdPerMTok: 1000, outputUsdPerMTok: 2000, contextTokens: 50_000, images: true });
    expect(set.status, JSON.stringify(set.body)).to.equal(200);
    expect(set.body).to.deep.include({
      id: priced,
      source: 'operator',
      contextTokens: 50_000,
      prices: { inputUsdPerMTok: 1000, outputUsdPerMTok: 2000, cachedInputUsdPerMTok: null },
    });
    const runId = await startRunOk(stack.api.app, alice.key, { prompt: 'price me', model: priced });
    const run = await waitForRunStatus(stack.api.deps, runId, ['completed']);
    const usage = run.usage as { inputTokens: number; outputTokens: number; cachedInputTokens: number };
    const expected = Math.ceil((usage.inputTokens * 1000 + usage.outputTokens * 2000) / 1);
    expect(Number(run.costMicros)).to.equal(expected);
    expect((await request(stack.api.app).get('/api/usage').set(alice.auth)).body.consumed.spendMicros).to.equal(expected);
  });

  it('refuses a disabled model (400 model_disabled) and an unpriced one under a spend limit (400 model_not_priced), at POST and for a message', async () => {
    const alice = await createAccount(stack.api.deps.db);
    expect((await put('openai/gpt-4.1-nano', { disabled: true })).status).to.equal(200);
    const disabled = await postRun(stack.api.app, alice.key, { prompt: 'x', model: 'openai/gpt-4.1-nano' });
    expect([disabled.status, disabled.body.error]).to.deep.equal([400, 'model_disabled']);
    expect(
      (await request(stack.api.app).get('/api/models').set(alice.auth)).body.models.find((m: { id: string }) => m.id === 'openai/gpt-4.1-nano').enabled,
    ).to.equal(false);

    expect((await put(unpriced, { inputUsdPerMTok: null, outputUsdPerMTok: null })).status).to.equal(200);
    const free = await startRunOk(stack.api.app, alice.key, { prompt: 'no limit, no price', model: unpriced });
    const run = await waitForRunStatus(stack.api.deps, free, ['completed']);
    expect(run.costMicros, 'an unpriced model costs null, not 0').to.equal(null);
    expect(
      (await request(stack.api.app).put(`/api/admin/accounts/${alice.accountId}/limits`).set(admin).send({ period: 'day', spendMicros: 5_000_000 })).status,
    ).to.equal(200);
    const refused = await postRun(stack.api.app, alice.key, { prompt: 'x', model: unpriced });
    expect([refused.status, refused.body.error]).to.deep.equal([400, 'model_not_priced']);
    const message = await request(stack.api.app).post(`/api/chats/${run.chatId}/messages`).set(alice.auth).send({ prompt: 'again' });
    expect([message.status, message.body.error], 'the chat’s model, unpriced').to.deep.equal([400, 'model_not_priced']);
    expect((await postRun(stack.api.app, alice.key, { prompt: 'priced is fine', model: 'openai/gpt-4o-mini' })).status).to.equal(202);
  });
});
