import { expect } from 'chai';
import request from 'supertest';
import type { RunTimeline } from '../../api/runs/runTimeline.js';
import { createAccount } from '../support/factories.js';
import { startRunOk, waitForRunStatus } from '../support/runs.js';
import { startStack, type Stack } from '../support/stack.js';
import { startStoryRun } from '../support/timelineRun.js';
import { startToolServer, type ToolServer } from '../support/toolServer.js';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhookReceiver.js';

const ADMIN = 'timeline-admin-token-0123456789';

describe('the run timeline (SPEC section 16), from runyard’s own tables', function () {
  this.timeout(90_000);
  let stack: Stack;
  let tools: ToolServer;
  let hooks: WebhookReceiver;
  before(async () => {
    tools = await startToolServer();
    hooks = await startWebhookReceiver();
    stack = await startStack({ ADMIN_TOKEN: ADMIN, TOOL_URL_ALLOWLIST: `${tools.url},${hooks.url}`, TOOL_RETRY_BASE_MS: '20', WEBHOOK_POLL_MS: '50' });
  });
  after(async () => {
    await stack.close();
    await tools.close();
    await hooks.close();
  });

  it('a run that parked, was continued, retried a tool and failed: every attempt, step, call, wait, delivery and the cleanup, with outcomes and errors', async () => {
    const bob = await createAccount(stack.api.deps.db);
    const runId = await startStoryRun(stack.api.app, stack.api.deps, bob.key, tools, hooks);
    const res = await request(stack.api.app).get(`/api/admin/runs/${runId}/timeline`).set('authorization', `Bearer ${ADMIN}`);
    expect(res.status).to.equal(200);
    const timeline = res.body as RunTimeline;
    expect(timeline).to.include({ runId, status: 'failed', attempts: 2, replayable: true });
    expect(timeline.error?.code).to.equal('provider_rejected');
    const of = (kind: string) => timeline.items.filter((item) => item.kind === kind);
    expect(timeline.items[0]).to.include({ kind: 'run', outcome: 'failed', parentId: null });
    expect(of('queued')).to.have.length(1);
    expect(of('attempt').map((a) => [a.id, a.outcome])).to.deep.equal([
      ['attempt-1', 'requires_action'],
      ['attempt-2', 'failed'],
    ]);
    expect(of('attempt')[1]!.error).to.match(/^provider_rejected/);
    expect(of('wait').map((w) => w.outcome)).to.deep.equal(['answered']);
    const wait = of('wait')[0]!;
    expect(Date.parse(wait.endedAt!)).to.be.at.least(Date.parse(wait.startedAt));
    expect(of('model_call').map((c) => [c.parentId, c.details.step])).to.deep.equal([
      ['attempt-1', 0],
      ['attempt-2', 1],
    ]);
    const [hold, flaky] = [of('tool_call').find((t) => t.name === 'execute_tool hold')!, of('tool_call').find((t) => t.name === 'execute_tool flaky')!];
    expect(hold).to.deep.include({ outcome: 'output', parentId: 'attempt-1' });
    expect(hold.details).to.include({ kind: 'client' });
    expect(flaky).to.deep.include({ outcome: 'output', parentId: 'attempt-2', error: null });
    expect(flaky.details).to.include({ kind: 'server', tries: 2 });
    expect(Date.parse(flaky.endedAt!)).to.be.at.least(Date.parse(flaky.startedAt));
    expect(of('webhook_delivery').map((d) => [d.name, d.outcome])).to.deep.equal([
      ['webhook run.requires_action (delivery 1)', 'delivered'],
      ['webhook run.failed (delivery 1)', 'delivered'],
    ]);
    expect(of('cleanup').map((c) => c.name)).to.deep.equal(['cleanup (failed)']);
    // In start order, every item inside the run.
    const starts = timeline.items.slice(1).map((item) => Date.parse(item.startedAt));
    expect(starts).to.deep.equal([...starts].sort((a, b) => a - b));
    expect(starts.every((at) => at >= Date.parse(timeline.items[0]!.startedAt))).to.equal(true);
  });

  it('a completed run shows its answer’s model call, after its tool step, to the run’s end', async () => {
    const bob = await createAccount(stack.api.deps.db);
    const runId = await startRunOk(stack.api.app, bob.key, {
      prompt: 'call echoing {"n":1}',
      tools: [{ name: 'echoing', url: tools.toolUrl('echoing'), inputSchema: { type: 'object' } }],
    });
    await waitForRunStatus(stack.api.deps, runId, ['completed']);
    const timeline = (await request(stack.api.app).get(`/api/admin/runs/${runId}/timeline`).set('authorization', `Bearer ${ADMIN}`)).body as RunTimeline;
    const calls = timeline.items.filter((item) => item.kind === 'model_call');
    expect(calls.map((c) => c.name)).to.deep.equal(['chat local/echo (step 1)', 'chat local/echo (answer)']);
    const tool = timeline.items.find((item) => item.kind === 'tool_call')!;
    const answer = calls[1]!;
    expect(answer).to.include({ parentId: 'attempt-1', outcome: 'stop', endedAt: timeline.items[0]!.endedAt });
    expect(Date.parse(answer.startedAt)).to.be.at.least(Date.parse(tool.endedAt!));
  });

  it('is admin-only: 401 without credentials, 403 for an account key, 404 for an unknown run', async () => {
    const bob = await createAccount(stack.api.deps.db);
    expect((await request(stack.api.app).get(`/api/admin/runs/${crypto.randomUUID()}/timeline`)).status).to.equal(401);
    expect((await request(stack.api.app).get(`/admin/runs/${crypto.randomUUID()}`)).status).to.equal(401);
    expect((await request(stack.api.app).get(`/admin/runs/${crypto.randomUUID()}`).set(bob.auth)).status).to.equal(403);
    const unknown = await request(stack.api.app).get(`/api/admin/runs/${crypto.randomUUID()}/timeline`).set('authorization', `Bearer ${ADMIN}`);
    expect(unknown.status).to.equal(404);
    expect(unknown.body.error).to.equal('run_not_found');
    expect((await request(stack.api.app).get('/admin/runs/not-a-run').auth('oncall', ADMIN)).status).to.equal(404);
  });
});
