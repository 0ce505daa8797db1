import { expect } from 'chai';
import request from 'supertest';
import { Webhook } from 'standardwebhooks';
import { accountToolSecrets } from '../../shared/accounts/toolSecrets.js';
import { startWorker, waitFor } from '../support/harness.js';
import { answerPendingCalls, postRun, startParkedRun, startRunOk, waitForRunStatus } from '../support/runs.js';
import { startStack, type Stack } from '../support/stack.js';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhookReceiver.js';

describe('run webhooks', function () {
  let receiver: WebhookReceiver;
  let stack: Stack;

  before(async () => {
    receiver = await startWebhookReceiver();
    stack = await startStack({ TOOL_URL_ALLOWLIST: receiver.origin, WEBHOOK_POLL_MS: '50', WEBHOOK_RETRY_BASE_MS: '100', ACCOUNT_MAX_ACTIVE_RUNS: '1000' });
  });
  after(async () => {
    await stack.close();
    await receiver.close();
  });
  beforeEach(() => receiver.answer(() => 200));

  const auth = () => ({ authorization: `Bearer ${stack.alice.key}` });
  const clientTool = { name: 'ask_user', inputSchema: { type: 'object' } };
  const deliveredFor = (runId: string) => receiver.processed().filter((d) => d.body.runId === runId);
  const waitForEvents = (runId: string, types: string[], timeoutMs = 15_000) =>
    waitFor(() => types.every((type) => deliveredFor(runId).some((d) => d.body.type === type)), { what: `${types.join(', ')} of ${runId}`, timeoutMs });

  it('delivers run.completed with the documented body, signed with the account’s secret', async () => {
    const runId = await startRunOk(stack.api.app, stack.alice.key, { prompt: 'hook me', webhook: { url: receiver.url } });
    await waitForEvents(runId, ['run.completed']);
    const [delivery] = deliveredFor(runId);
    const run = await stack.api.deps.db.run.findUniqueOrThrow({ where: { id: runId } });
    expect(delivery!.body).to.have.keys('type', 'runId', 'chatId', 'sessionId', 'status', 'attempt', 'usage', 'costMicros', 'error', 'occurredAt');
    expect(delivery!.body).to.deep.include({
      type: 'run.completed',
      runId,
      chatId: run.chatId,
      sessionId: run.sessionId,
      status: 'completed',
      attempt: 1,
      error: null,
    });
    const secrets = await accountToolSecrets(stack.api.deps.db, stack.alice.accountId, stack.api.deps.config.RUNYARD_SECRET);
    expect(new Webhook(secrets.current).verify(delivery!.rawBody, delivery!.headers as Record<string, string>)).to.deep.include({ runId });
    expect(
      deliveredFor(runId).map((d) => d.body.type),
      'run.started is not in the default set',
    ).to.deep.equal(['run.completed']);
  });

  it('delivers run.failed with its error, and run.requires_action with the pending calls then run.cancelled, in order', async () => {
    const failed = await startRunOk(stack.api.app, stack.alice.key, { prompt: 'no [[fail:400]]', model: 'openai/gpt-4o', webhook: { url: receiver.url } });
    const waiting = await startRunOk(stack.api.app, stack.alice.key, {
      prompt: 'call ask_user {}',
      tools: [clientTool],
      webhook: { url: receiver.url, events: ['run.started', 'run.requires_action', 'run.cancelled'] },
    });
    await waitForEvents(failed, ['run.failed']);
    expect(deliveredFor(failed)[0]!.body).to.deep.include({ status: 'failed' });
    expect((deliveredFor(failed)[0]!.body.error as { code: string }).code).to.equal('provider_rejected');
    await waitForEvents(waiting, ['run.requires_action']);
    const parked = deliveredFor(waiting).find((d) => d.body.type === 'run.requires_action')!;
    expect(parked.body.pendingToolCalls).to.have.length(1);
    expect((parked.body.pendingToolCalls as { toolName: string; kind: string }[])[0]).to.deep.include({ toolName: 'ask_user', kind: 'result' });
    await request(stack.api.app).post(`/api/chat/runs/${waiting}/cancel`).set(auth());
    await waitForEvents(waiting, ['run.cancelled']);
    expect(deliveredFor(waiting).map((d) => d.body.type)).to.deep.equal(['run.started', 'run.requires_action', 'run.cancelled']);
  });

  it('retries 500, 500, 200 with the same webhook-id (processed once); stops at a 410; shows every attempt', async () => {
    receiver.answer((delivery, nth) => (delivery.body.runId === flakyRun && nth <= 2 ? 500 : delivery.body.runId === goneRun ? 410 : 200));
    let flakyRun = '';
    let goneRun = '';
    flakyRun = await startRunOk(stack.api.app, stack.alice.key, { prompt: 'flaky receiver', webhook: { url: receiver.url } });
    goneRun = await startRunOk(stack.api.app, stack.alice.key, { prompt: 'gone receiver', webhook: { url: receiver.url } });
    await waitForEvents(flakyRun, ['run.completed']);
    const flaky = receiver.deliveries.filter((d) => d.body.runId === flakyRun);
    expect(flaky.map((d) => d.status)).to.deep.equal([500, 500, 200]);
    expect(new Set(flaky.map((d) => d.headers['webhook-id'])).size).to.equal(1);
    expect(deliveredFor(flakyRun)).to.have.length(1);
    await waitFor(async () => (await stack.api.deps.db.webhookEvent.findFirst({ where: { runId: goneRun } }))?.status === 'failed', {
      what: 'the 410 to be final',
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(
      receiver.deliveries.filter((d) => d.body.runId === goneRun).map((d) => d.status),
      'no retry after 410',
    ).to.deep.equal([410]);
    const log = await request(stack.api.app).get(`/api/chat/runs/${flakyRun}/webhook-deliveries`).set(auth());
    expect(log.status).to.equal(200);
    expect(log.body.events[0]).to.deep.include({ type: 'run.completed', status: 'delivered', attempts: 3 });
    expect(log.body.events[0].deliveries.map((d: { statusCode: number }) => d.statusCode)).to.deep.equal([500, 500, 200]);
  });

  it('delivers after the receiver comes back from an outage, and delivers a run’s events in order even when the first needed retries', async () => {
    await receiver.down();
    const runId = await startRunOk(stack.api.app, stack.alice.key, { prompt: 'call ask_user {}', tools: [clientTool], webhook: { url: receiver.url } });
    await waitForRunStatus(stack.api.deps, runId, ['requires_action']);
    const pending = (await request(stack.api.app).get(`/api/chat/runs/${runId}`).set(auth())).body.pendingToolCalls;
    await request(stack.api.app)
      .post(`/api/chat/runs/${runId}/tool-results`)
      .set(auth())
      .send({ results: [{ toolCallId: pending[0].toolCallId, output: 'ok' }] });
    await waitForRunStatus(stack.api.deps, runId, ['completed']);
    await waitFor(async () => (await stack.api.deps.db.webhookDelivery.count({ where: { event: { runId } } })) >= 2, { what: 'failed attempts while down' });
    await receiver.up();
    await waitForEvents(runId, ['run.requires_action', 'run.completed'], 20_000);
    expect(deliveredFor(runId).map((d) => d.body.type)).to.deep.equal(['run.requires_action', 'run.completed']);
  });

  it('never loses an event: written with the transition, delivered by another process when the first is gone', async () => {
    await receiver.down();
    const runId = await startRunOk(stack.api.app, stack.alice.key, { prompt: 'outbox', webhook: { url: receiver.url } });
    await waitForRunStatus(stack.api.deps, runId, ['completed']);
    expect(await stack.api.deps.db.webhookEvent.count({ where: { runId, status: 'pending' } }), 'in the outbox with the completion').to.equal(1);
    await stack.worker.close(1_000);
    await receiver.up();
    const other = await startWorker(stack.api.prefix, stack.env);
    try {
      await waitForEvents(runId, ['run.completed']);
    } finally {
      await other.close(1_000);
      stack.worker = await startWorker(stack.api.prefix, { ...stack.env, WEBHOOK_POLL_MS: '50', WEBHOOK_RETRY_BASE_MS: '100' });
    }
  });

  it('hands back a delivery its worker’s shutdown cut short, at once: another process delivers it, not after the lease', async () => {
    let hold = true;
    let runId = '';
    receiver.answer((delivery) => (hold && delivery.body.type === 'run.completed' ? new Promise<number>(() => {}) : 200));
    try {
      runId = await startRunOk(stack.api.app, stack.alice.key, { prompt: 'held', webhook: { url: receiver.url } });
      const inFlight = () => stack.api.deps.db.webhookEvent.findFirst({ where: { runId, type: 'run.completed', lockedUntil: { not: null } } });
      await waitFor(inFlight, { what: 'the delivery to be in flight' });
      await stack.worker.close(1_000);
      const [event] = await stack.api.deps.db.webhookEvent.findMany({ where: { runId, type: 'run.completed' } });
      expect(event, 'claim handed back, the cut-short attempt not counted').to.include({ status: 'pending', lockedUntil: null, attempts: 0 });
      hold = false;
    } finally {
      receiver.answer(() => 200);
      stack.worker = await startWorker(stack.api.prefix, stack.env);
    }
    await waitForEvents(runId, ['run.completed']);
  });

  it('delivers every event of 200 runs exactly once to a deduplicating receiver', async () => {
    const runIds = await Promise.all(
      Array.from({ length: 200 }, (_, i) => startRunOk(stack.api.app, stack.alice.key, { prompt: `many ${i}`, webhook: { url: receiver.url } })),
    );
    await waitFor(() => runIds.every((runId) => deliveredFor(runId).length === 1), { what: '200 deliveries', timeoutMs: 60_000 });
    const ids = receiver
      .processed()
      .filter((d) => runIds.includes(d.body.runId))
      .map((d) => d.headers['webhook-id']);
    expect(new Set(ids).size).to.equal(200);
  });

  it('redelivers an event on an operator’s request, with the same webhook-id', async () => {
    const runId = await startRunOk(stack.api.app, stack.alice.key, { prompt: 'again please', webhook: { url: receiver.url } });
    await waitForEvents(runId, ['run.completed']);
    const [event] = await stack.api.deps.db.webhookEvent.findMany({ where: { runId } });
    const admin = await import('../support/factories.js').then((f) => f.createAccount(stack.api.deps.db, ['admin']));
    const res = await request(stack.api.app)
      .post(`/api/admin/webhook-events/${event!.id}/redeliver`)
      .set({ authorization: `Bearer ${admin.key}`, 'content-type': 'application/json' });
    expect(res.status).to.equal(202);
    await waitFor(() => receiver.deliveries.filter((d) => d.body.runId === runId).length === 2, { what: 'the redelivery' });
    const both = receiver.deliveries.filter((d) => d.body.runId === runId);
    expect(both[0]!.headers['webhook-id']).to.equal(both[1]!.headers['webhook-id']);
  });

  it('refuses at POST a webhook url off the allowlist and unknown event names, naming them', async () => {
    const off = await postRun(stack.api.app, stack.alice.key, { prompt: 'x', webhook: { url: 'http://example.com/hook' } });
    expect(off.status).to.equal(400);
    expect(off.body.error).to.equal('webhook_url_not_allowed');
    const unknown = await postRun(stack.api.app, stack.alice.key, { prompt: 'x', webhook: { url: receiver.url, events: ['run.completed', 'run.exploded'] } });
    expect(unknown.status).to.equal(400);
    expect(unknown.body.detail).to.include('run.exploded');
  });

  it('tells which queued message a chat’s run came from: its run.started carries queuedMessageId', async () => {
    const webhook = { url: receiver.url, events: ['run.started', 'run.completed'] };
    const { runId: first, chatId } = await startParkedRun(stack.api.app, stack.api.deps, stack.alice.key, { webhook });
    const queued = await request(stack.api.app).post(`/api/chats/${chatId}/messages`).set(auth()).send({ prompt: 'after you' });
    expect(queued.body.queued).to.equal(true);
    await answerPendingCalls(stack.api.app, stack.alice.key, first);
    const next = await waitFor(() => stack.api.deps.db.run.findFirst({ where: { queuedMessageId: queued.body.queuedMessageId } }), {
      what: 'the queued message’s run',
    });
    await waitForEvents(next.id, ['run.started', 'run.completed']);
    expect(deliveredFor(next.id).map((d) => d.body.queuedMessageId)).to.deep.equal([queued.body.queuedMessageId, queued.body.queuedMessageId]);
    expect(
      deliveredFor(first).every((d) => !('queuedMessageId' in d.body)),
      'a run started by a POST has none',
    ).to.equal(true);
  });

  it('lists the same pending calls in run.requires_action (computed in SQL by the outbox trigger) as GET run (computed in TypeScript)', async () => {
    const approveMe = { name: 'approve_me', inputSchema: { type: 'object' }, url: `${receiver.origin}/tools/approve_me`, requireApproval: true };
    const strict = { name: 'strict', inputSchema: { type: 'object', properties: { x: { type: 'string' } }, required: ['x'] } };
    const runId = await startRunOk(stack.api.app, stack.alice.key, {
      prompt: 'call ask_user {"q":1}\ncall approve_me {"y":2}\ncall strict {"x":3}',
      tools: [clientTool, approveMe, strict],
      webhook: { url: receiver.url, events: ['run.requires_action', 'run.cancelled'] },
    });
    await waitForEvents(runId, ['run.requires_action']);
    const fromTrigger = deliveredFor(runId).find((d) => d.body.type === 'run.requires_action')!.body.pendingToolCalls as { toolName: string }[];
    const fromApi = (await request(stack.api.app).get(`/api/chat/runs/${runId}`).set(auth())).body.pendingToolCalls as { toolName: string }[];
    expect(fromApi.map((call) => call.toolName)).to.deep.equal(['ask_user', 'approve_me']);
    expect(fromTrigger).to.deep.equal(fromApi);
    await request(stack.api.app).post(`/api/chat/runs/${runId}/cancel`).set(auth());
  });
});
