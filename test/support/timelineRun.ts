import request from 'supertest';
import type { Express } from 'express';
import type { ApiDeps } from '../../api/deps.js';
import { HOLD_TOOL, answerPendingCalls, startRunOk, waitForRunStatus } from './runs.js';
import type { ToolServer } from './toolServer.js';
import type { WebhookReceiver } from './webhookReceiver.js';
import { waitFor } from './harness.js';

/**
 * A run with a story for the timeline (on the fake OpenAI model): it parks on a client tool, is
 * continued by the caller, calls a server tool that answers 500 once (retried, then 200), and fails
 * at its third model call (a 400); its webhook is told.
 */
export async function startStoryRun(app: Express, deps: ApiDeps, key: string, tools: ToolServer, hooks: WebhookReceiver): Promise<string> {
  let flakyCalls = 0;
  tools.behave('flaky', () => (++flakyCalls === 1 ? { status: 500, body: { error: 'try again' } } : { body: { output: { ok: true } } }));
  const runId = await startRunOk(app, key, {
    prompt: `a story [[call1:hold:{}]] [[call2:flaky:{}]] [[fail-at:3:400]]`,
    model: 'openai/gpt-4o-mini',
    tools: [HOLD_TOOL, { name: 'flaky', url: tools.toolUrl('flaky'), inputSchema: { type: 'object' } }],
    webhook: { url: hooks.url, events: ['run.requires_action', 'run.failed'] },
  });
  await waitForRunStatus(deps, runId, ['requires_action']);
  await answerPendingCalls(app, key, runId);
  await waitForRunStatus(deps, runId, ['failed']);
  await waitFor(() => hooks.deliveries.filter((d) => d.body.runId === runId).length >= 2, { what: 'both webhooks' });
  await waitFor(async () => (await deps.db.webhookDelivery.count({ where: { event: { runId } } })) >= 2, { what: 'the delivery log' });
  await waitFor(async () => (await request(app).get(`/api/chat/runs/${runId}`).set('authorization', `Bearer ${key}`)).body.status === 'failed');
  return runId;
}
