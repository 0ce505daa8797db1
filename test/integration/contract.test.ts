import { expect } from 'chai';
import request from 'supertest';
import { createAccount, createEphemeralKey } from '../support/factories.js';
import { expectMatchesContract } from '../support/contract.js';
import { HOLD_TOOL, waitForRunStatus } from '../support/runs.js';
import { waitFor } from '../support/harness.js';
import { startStack, type Stack } from '../support/stack.js';

/** Every route's answers, success and error, against the OpenAPI document the api serves. */
describe('the API contract (/openapi.json) holds for what the routes answer', function () {
  let stack: Stack;
  const ADMIN_TOKEN = 'contract-admin-token-0123456789';

  before(async () => {
    stack = await startStack({ ADMIN_TOKEN });
  });
  after(() => stack.close());

  const app = () => stack.api.app;
  const auth = () => ({ authorization: `Bearer ${stack.alice.key}` });
  const check = async (method: 'get' | 'post' | 'delete', template: string, path: string, headers: Record<string, string>, body?: object) => {
    const req = request(app())[method](path).set(headers);
    const res = body ? await req.send(body) : await req;
    expectMatchesContract(method, template, res);
    return res;
  };

  it('runs: start, list, get, cancel, messages, stream token, webhook deliveries, tool results — and their errors', async () => {
    const started = await check('post', '/api/chat/runs', '/api/chat/runs', auth(), { prompt: 'contract', title: 't', metadata: { a: 'b' } });
    const { runId, chatId } = started.body;
    await waitForRunStatus(stack.api.deps, runId, ['completed']);
    await check('get', '/api/chat/runs', '/api/chat/runs?limit=5', auth());
    await check('get', '/api/chat/runs/{runId}', `/api/chat/runs/${runId}`, auth());
    await check('get', '/api/chats/{chatId}/messages', `/api/chats/${chatId}/messages`, auth());
    await check('post', '/api/chat/runs/{runId}/stream-token', `/api/chat/runs/${runId}/stream-token`, auth());
    await check('get', '/api/chat/runs/{runId}/webhook-deliveries', `/api/chat/runs/${runId}/webhook-deliveries`, auth());
    await check('post', '/api/chat/runs/{runId}/cancel', `/api/chat/runs/${runId}/cancel`, auth());
    await check('post', '/api/chat/runs/{runId}/tool-results', `/api/chat/runs/${runId}/tool-results`, auth(), { results: [] });

    const parked = await check('post', '/api/chat/runs', '/api/chat/runs', auth(), {
      prompt: 'call ask {}',
      tools: [{ name: 'ask', inputSchema: { type: 'object' } }],
    });
    await waitForRunStatus(stack.api.deps, parked.body.runId, ['requires_action']);
    const waiting = await check('get', '/api/chat/runs/{runId}', `/api/chat/runs/${parked.body.runId}`, auth());
    const toolCallId = waiting.body.pendingToolCalls[0].toolCallId;
    await check('post', '/api/chat/runs/{runId}/tool-results', `/api/chat/runs/${parked.body.runId}/tool-results`, auth(), { results: [] });
    await check('post', '/api/chat/runs/{runId}/tool-results', `/api/chat/runs/${parked.body.runId}/tool-results`, auth(), {
      results: [{ toolCallId, output: 1 }],
    });

    await check('post', '/api/chat/runs', '/api/chat/runs', auth(), { prompt: '' });
    await check('get', '/api/chat/runs/{runId}', '/api/chat/runs/00000000-0000-4000-8000-000000000000', auth());
    await check('get', '/api/chat/runs', '/api/chat/runs', {});
  });

  it('whoami for an account key, a run key and the admin token; the admin routes', async () => {
    await check('get', '/api/auth/whoami', '/api/auth/whoami', auth());
    const runId = (await request(app()).post('/api/chat/runs').set(auth()).send({ prompt: 'who' })).body.runId;
    const runKey = await createEphemeralKey(stack.api.deps.db, stack.alice.accountId, runId);
    await check('get', '/api/auth/whoami', '/api/auth/whoami', { authorization: `Bearer ${runKey}` });
    await check('get', '/api/auth/whoami', '/api/auth/whoami', { authorization: `Bearer ${ADMIN_TOKEN}` });
    const admin = await createAccount(stack.api.deps.db, ['admin']);
    const adminAuth = { authorization: `Bearer ${admin.key}`, 'content-type': 'application/json' };
    await waitForRunStatus(stack.api.deps, runId, ['completed']);
    await check('post', '/api/admin/runs/{runId}/replay', `/api/admin/runs/${runId}/replay`, adminAuth);
    await check('post', '/api/admin/runs/replay', '/api/admin/runs/replay', adminAuth, { status: 'failed', dryRun: true });
    await check('post', '/api/admin/webhook-events/redeliver', '/api/admin/webhook-events/redeliver', adminAuth, { status: 'failed' });
    const chat = await check(
      'get',
      '/api/admin/chats/{chatId}',
      `/api/admin/chats/${(await stack.api.deps.db.run.findUniqueOrThrow({ where: { id: runId } })).chatId}`,
      adminAuth,
    );
    expect(chat.body.queue).to.deep.equal([]);
  });

  it('chats: send (started and queued), get, list, queue, promote, delete, interrupt, archive — and their errors', async () => {
    const started = await check('post', '/api/chat/runs', '/api/chat/runs', auth(), { prompt: 'a chat' });
    const { chatId } = started.body;
    await waitForRunStatus(stack.api.deps, started.body.runId, ['completed']);
    const sent = await check('post', '/api/chats/{chatId}/messages', `/api/chats/${chatId}/messages`, auth(), {
      prompt: 'hold on [[call1:hold:{}]]',
      model: 'openai/gpt-4o-mini',
      tools: [HOLD_TOOL],
    });
    await waitForRunStatus(stack.api.deps, sent.body.runId, ['requires_action']);
    const queued = await check('post', '/api/chats/{chatId}/messages', `/api/chats/${chatId}/messages`, auth(), { prompt: 'then this' });
    const other = await check('post', '/api/chats/{chatId}/messages', `/api/chats/${chatId}/messages`, auth(), { prompt: 'and this' });
    expect([sent.status, queued.body.queued]).to.deep.equal([202, true]);
    await check('post', '/api/chats/{chatId}/messages', `/api/chats/${chatId}/messages`, auth(), { prompt: 'no', onBusy: 'reject' });
    await check('get', '/api/chats/{chatId}', `/api/chats/${chatId}`, auth());
    await check('get', '/api/chats', '/api/chats?limit=2', auth());
    await check('get', '/api/chats/{chatId}/queued-messages', `/api/chats/${chatId}/queued-messages`, auth());
    await check(
      'delete',
      '/api/chats/{chatId}/queued-messages/{queuedMessageId}',
      `/api/chats/${chatId}/queued-messages/${other.body.queuedMessageId}`,
      auth(),
    );
    await check(
      'post',
      '/api/chats/{chatId}/queued-messages/{queuedMessageId}/promote',
      `/api/chats/${chatId}/queued-messages/${queued.body.queuedMessageId}/promote`,
      auth(),
    );
    await waitFor(async () => (await stack.api.deps.db.run.count({ where: { chatId, status: 'completed' } })) === 2);
    await check('post', '/api/chats/{chatId}/interrupt', `/api/chats/${chatId}/interrupt`, auth());
    await check('post', '/api/chats/{chatId}/archive', `/api/chats/${chatId}/archive`, auth());
    await check('post', '/api/chats/{chatId}/messages', `/api/chats/${chatId}/messages`, auth(), { prompt: 'archived' });
    await check('post', '/api/chats/{chatId}/unarchive', `/api/chats/${chatId}/unarchive`, auth());
    await check('get', '/api/chats/{chatId}', '/api/chats/00000000-0000-4000-8000-000000000000', auth());
    await check('delete', '/api/chats/{chatId}', `/api/chats/${chatId}`, auth());
    await check('delete', '/api/chats/{chatId}', `/api/chats/${chatId}`, auth());
  });
});
