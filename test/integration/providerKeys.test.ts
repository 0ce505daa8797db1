import { expect } from 'chai';
import request from 'supertest';
import { setProviderKey } from '../../shared/accounts/providerKeys.js';
import { createAccount } from '../support/factories.js';
import { postRun, startRunOk, waitForRunStatus } from '../support/runs.js';
import { startStack, type Stack } from '../support/stack.js';

const ADMIN = 'admin-token-0123456789abcdef';

describe('bring your own key: an account’s own provider keys (SPEC section 21)', function () {
  this.timeout(60_000);
  let stack: Stack;
  // The deployment has no OpenAI key: only an account's own key runs openai/ models.
  before(async () => {
    stack = await startStack({ OPENAI_API_KEY: '', ADMIN_TOKEN: ADMIN });
  });
  after(() => stack.close());

  it('runs an account’s openai/ models with its own key where the deployment has none, and names whose key a 401 refused', async () => {
    const alice = await createAccount(stack.api.deps.db);
    const refused = await postRun(stack.api.app, alice.key, { prompt: 'x', model: 'openai/gpt-4o-mini' });
    expect([refused.status, refused.body.error]).to.deep.equal([400, 'model_unavailable']);

    const set = await request(stack.api.app)
      .put(`/api/admin/accounts/${alice.accountId}/provider-keys/openai`)
      .set({ authorization: `Bearer ${ADMIN}` })
      .send({ key: 'sk-alice-own-key-123', baseUrl: stack.fake.openaiBaseUrl });
    expect(set.status, JSON.stringify(set.body)).to.equal(200);
    expect(JSON.stringify(set.body)).not.to.include('sk-alice-own-key-123');
    const before = stack.fake.requests.length;
    const runId = await startRunOk(stack.api.app, alice.key, { prompt: 'with my own key', model: 'openai/gpt-4o-mini' });
    await waitForRunStatus(stack.api.deps, runId, ['completed']);
    const sent = stack.fake.requests.slice(before).filter((r) => JSON.stringify(r.body).includes('with my own key'));
    expect(sent.map((r) => r.headers.authorization)).to.deep.equal(['Bearer sk-alice-own-key-123']);
    const job = await stack.api.deps.runQueues.forRun(runId).getJob(runId);
    const run = await request(stack.api.app).get(`/api/chat/runs/${runId}`).set(alice.auth);
    expect(JSON.stringify([job?.data, run.body])).not.to.include('sk-alice-own-key-123');

    const bob = await createAccount(stack.api.deps.db);
    expect((await postRun(stack.api.app, bob.key, { prompt: 'x', model: 'openai/gpt-4o-mini' })).status, 'another account has no key').to.equal(400);

    const denied = await startRunOk(stack.api.app, alice.key, { prompt: 'who [[fail:401]]', model: 'openai/gpt-4o-mini' });
    const failed = await waitForRunStatus(stack.api.deps, denied, ['failed']);
    expect(failed).to.include({ errorCode: 'provider_auth_failed', errorRetryable: false });
    expect(failed.errorMessage).to.include("the account's own key").and.not.include('sk-alice');
  });

  it('keeps the deployment’s key for accounts without their own, and the account’s for accounts with one', async () => {
    const withKeys = await startStack({ OPENAI_API_KEY: 'sk-deployment-key' });
    try {
      const carol = await createAccount(withKeys.api.deps.db);
      const dave = await createAccount(withKeys.api.deps.db);
      await setProviderKey(
        withKeys.api.deps.db,
        dave.accountId,
        'openai',
        'sk-dave-key-456',
        withKeys.fake.openaiBaseUrl,
        withKeys.api.deps.config.RUNYARD_SECRET,
      );
      for (const [account, key] of [
        [carol, 'Bearer sk-deployment-key'],
        [dave, 'Bearer sk-dave-key-456'],
      ] as const) {
        const marker = `whose ${account.accountId}`;
        const runId = await startRunOk(withKeys.api.app, account.key, { prompt: marker, model: 'openai/gpt-4o-mini' });
        await waitForRunStatus(withKeys.api.deps, runId, ['completed']);
        const sent = withKeys.fake.requests.filter((r) => JSON.stringify(r.body).includes(marker));
        expect(sent.map((r) => r.headers.authorization)).to.deep.equal([key]);
      }
    } finally {
      await withKeys.close();
    }
  });

  it('sets, lists (names only) and removes provider keys and secrets with the admin API', async () => {
    const erin = await createAccount(stack.api.deps.db);
    const admin = { authorization: `Bearer ${ADMIN}` };
    const base = `/api/admin/accounts/${erin.accountId}`;
    expect((await request(stack.api.app).put(`${base}/secrets/MCP_TOKEN`).set(admin).send({ value: 'the-secret-value' })).status).to.equal(200);
    const secrets = await request(stack.api.app).get(`${base}/secrets`).set(admin);
    expect(secrets.body.secrets.map((row: { name: string }) => row.name)).to.deep.equal(['MCP_TOKEN']);
    expect(JSON.stringify(secrets.body)).not.to.include('the-secret-value');
    expect((await request(stack.api.app).delete(`${base}/secrets/MCP_TOKEN`).set(admin)).status).to.equal(204);
    expect((await request(stack.api.app).delete(`${base}/secrets/MCP_TOKEN`).set(admin)).status).to.equal(404);
    expect((await request(stack.api.app).put(`${base}/provider-keys/anthropic`).set(admin).send({ key: 'sk-ant-erin-000' })).status).to.equal(200);
    const keys = await request(stack.api.app).get(`${base}/provider-keys`).set(admin);
    expect(keys.body.providerKeys.map((row: { provider: string }) => row.provider)).to.deep.equal(['anthropic']);
    expect(JSON.stringify(keys.body)).not.to.include('sk-ant-erin');
    expect((await request(stack.api.app).put(`${base}/provider-keys/mistral`).set(admin).send({ key: 'sk-x-00000000' })).status).to.equal(400);
    expect((await request(stack.api.app).delete(`${base}/provider-keys/anthropic`).set(admin)).status).to.equal(204);
  });
});
