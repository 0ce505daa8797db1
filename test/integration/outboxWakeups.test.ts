import { expect } from 'chai';
import request from 'supertest';
import { waitFor } from '../support/harness.js';
import { startRunOk, waitForRunStatus } from '../support/runs.js';
import { startStack, type Stack } from '../support/stack.js';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhookReceiver.js';

/**
 * The outboxes wake their workers (Postgres NOTIFY on commit): with the pollers' intervals at a
 * minute, a webhook is delivered and a queued message's run starts within seconds — only a
 * notification can have woken them.
 */
describe('outboxes wake their workers: webhooks and queued messages without waiting for a poll', function () {
  this.timeout(60_000);
  let stack: Stack;
  let receiver: WebhookReceiver;
  before(async () => {
    receiver = await startWebhookReceiver();
    stack = await startStack({ WEBHOOK_POLL_MS: '60000', CHAT_PROMOTION_POLL_MS: '60000', TOOL_URL_ALLOWLIST: receiver.url });
    // The pollers' first round (at start) is done; from now on only a notification wakes them before a minute.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  });
  after(async () => {
    await stack.close();
    await receiver.close();
  });

  it('delivers a run’s webhook well before the poll would, and starts a queued message’s run when the chat’s run ends', async () => {
    const started = Date.now();
    const runId = await startRunOk(stack.api.app, stack.alice.key, { prompt: 'hook me', webhook: { url: receiver.url } });
    await waitFor(() => receiver.processed().some((d) => d.body.runId === runId && d.body.type === 'run.completed'), {
      what: 'run.completed delivered',
      timeoutMs: 15_000,
    });
    expect(Date.now() - started, 'long before the 60 s poll').to.be.below(15_000);

    const parked = await startRunOk(stack.api.app, stack.alice.key, {
      prompt: 'hold on [[call1:hold:{}]]',
      model: 'openai/gpt-4o-mini',
      tools: [{ name: 'hold', inputSchema: { type: 'object' } }],
    });
    const { chatId } = await waitForRunStatus(stack.api.deps, parked, ['requires_action']);
    const queued = await request(stack.api.app).post(`/api/chats/${chatId}/messages`).set(stack.alice.auth).send({ prompt: 'next' });
    expect(queued.body.queued).to.equal(true);
    expect((await request(stack.api.app).post(`/api/chat/runs/${parked}/cancel`).set(stack.alice.auth)).status).to.equal(202);
    const next = await waitFor(() => stack.api.deps.db.run.findFirst({ where: { chatId, queuedMessageId: queued.body.queuedMessageId } }), {
      what: 'the queued message’s run',
    });
    await waitForRunStatus(stack.api.deps, next.id, ['completed'], 15_000);
  });
});
