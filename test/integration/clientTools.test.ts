import { expect } from 'chai';
import request from 'supertest';
import { sweepStaleRuns } from '../../worker/fleet/sweep.js';
import { comparableParts, readWithAiSdk } from '../support/aiSdkClient.js';
import { createAccount, type TestAccount } from '../support/factories.js';
import { sweepDepsFor, waitFor } from '../support/harness.js';
import { postRun, startRunOk, waitForRunStatus } from '../support/runs.js';
import { startStack, type Stack } from '../support/stack.js';
import { chunkTypes, storedEvents } from '../support/streams.js';
import { assembledText, readSse } from '../support/sse.js';
import { startToolServer, type ToolServer } from '../support/toolServer.js';

type Pending = { toolCallId: string; toolName: string; input: unknown; kind: 'result' | 'approval' };

describe('agent runs: client tools and approvals (requires_action)', function () {
  let tools: ToolServer;
  let stack: Stack;
  let apiUrl: string;
  let alice: TestAccount;

  before(async () => {
    tools = await startToolServer();
    stack = await startStack({ TOOL_URL_ALLOWLIST: tools.url });
    apiUrl = await stack.api.url();
    alice = stack.alice;
  });
  after(async () => {
    await stack.close();
    await tools.close();
  });

  const schema = { type: 'object', properties: { q: { type: 'string' } } };
  const clientTool = { name: 'pick_color', description: 'asks the user', inputSchema: schema };
  const guardedTool = () => ({ name: 'send_email', inputSchema: schema, url: tools.toolUrl('send_email'), requireApproval: true });
  const auth = (who: TestAccount = alice) => ({ authorization: `Bearer ${who.key}` });
  const getRun = async (runId: string) => (await request(stack.api.app).get(`/api/chat/runs/${runId}`).set(auth())).body;
  const submit = (runId: string, body: unknown, headers: Record<string, string> = {}) =>
    request(stack.api.app)
      .post(`/api/chat/runs/${runId}/tool-results`)
      .set(auth())
      .set(headers)
      .send(body as object);

  async function parked(runId: string): Promise<Pending[]> {
    await waitForRunStatus(stack.api.deps, runId, ['requires_action']);
    const run = await getRun(runId);
    expect(run.status).to.equal('requires_action');
    return run.pendingToolCalls;
  }

  async function expectStreamEqualsHistory(runId: string) {
    const { message, errors } = await readWithAiSdk(`${apiUrl}/api/chat/runs/${runId}/stream`, auth());
    expect(errors).to.deep.equal([]);
    const run = await getRun(runId);
    const history = (await request(stack.api.app).get(`/api/chats/${run.chatId}/messages`).set(auth())).body.messages;
    const answer = history.filter((m: { role: string }) => m.role === 'assistant');
    expect(answer).to.have.length(1);
    expect(comparableParts(message!.parts)).to.deep.equal(comparableParts(answer[0].parts));
    return answer[0].parts as { type: string; state?: string; output?: unknown; errorText?: string }[];
  }

  it('parks a run on a client tool: pending call shown, no worker, key revoked; the posted result continues it to the end', async () => {
    const runId = await startRunOk(stack.api.app, alice.key, { prompt: 'call pick_color {"q":"warm"}', tools: [clientTool] });
    const pending = await parked(runId);
    expect(pending).to.have.length(1);
    expect(pending[0]).to.deep.include({ toolName: 'pick_color', input: { q: 'warm' }, kind: 'result' });
    const row = await stack.api.deps.db.run.findUniqueOrThrow({ where: { id: runId } });
    expect(row.workerId, 'no worker holds it').to.equal(null);
    expect(await stack.api.deps.db.apiKey.count({ where: { runId, revokedAt: null } }), 'no valid run key').to.equal(0);
    const events = await storedEvents(stack.api.deps.redis, stack.api.prefix, runId);
    expect(chunkTypes(events)).to.include('tool-input-available');
    expect(events.at(-1)!.chunk).to.deep.include({ type: 'data-run-status' });
    expect((events.at(-1)!.chunk as unknown as { data: { status: string } }).data.status).to.equal('requires_action');

    const res = await submit(runId, { results: [{ toolCallId: pending[0]!.toolCallId, output: { color: 'amber' } }] });
    expect(res.status).to.equal(202);
    expect(res.body).to.deep.equal({ runId, status: 'queued' });
    const done = await waitForRunStatus(stack.api.deps, runId, ['completed']);
    expect(done.attempt).to.equal(2);
    expect(await stack.api.deps.db.apiKey.count({ where: { runId } }), 'the continuation minted a fresh key').to.equal(2);
    const parts = await expectStreamEqualsHistory(runId);
    expect(parts.find((p) => p.type === 'tool-pick_color')).to.deep.include({ state: 'output-available', output: { color: 'amber' } });
    expect(parts.find((p) => p.type === 'text')).to.deep.include({ text: '{"color":"amber"}' });
  });

  for (const model of ['openai/gpt-4o', 'anthropic/claude-haiku-4-5']) {
    it(`parks and continues a client-tool run on ${model}; stream == history through the parked interval`, async () => {
      const runId = await startRunOk(stack.api.app, alice.key, { prompt: 'choose [[call1:pick_color:{"q":"cool"}]]', model, tools: [clientTool] });
      const [call] = await parked(runId);
      expect(call).to.deep.include({ toolName: 'pick_color', input: { q: 'cool' }, kind: 'result' });
      expect((await submit(runId, { results: [{ toolCallId: call!.toolCallId, output: 'blue' }] })).status).to.equal(202);
      await waitForRunStatus(stack.api.deps, runId, ['completed']);
      const parts = await expectStreamEqualsHistory(runId);
      expect(parts.map((p) => p.type)).to.deep.equal(['step-start', 'tool-pick_color', 'step-start', 'text']);
      expect(parts.find((p) => p.type === 'text')).to.deep.include({ text: 'Echo: choose | results: blue' });
    });
  }

  it('runs the server tool of a mixed step once and parks on the client call only', async () => {
    const serverTool = { name: 'lookup', inputSchema: schema, url: tools.toolUrl('lookup') };
    const runId = await startRunOk(stack.api.app, alice.key, {
      prompt: 'call lookup {"q":"now"}\ncall pick_color {"q":"later"}',
      tools: [serverTool, clientTool],
    });
    const pending = await parked(runId);
    expect(pending.map((p) => p.toolName)).to.deep.equal(['pick_color']);
    expect(tools.calls.filter((c) => c.body.runId === runId)).to.have.length(1);
    const listed = await request(stack.api.app).get('/api/chat/runs?status=requires_action').set(auth());
    expect(listed.body.runs.map((r: { runId: string }) => r.runId)).to.include(runId);
    await submit(runId, { results: [{ toolCallId: pending[0]!.toolCallId, output: 'red' }] });
    await waitForRunStatus(stack.api.deps, runId, ['completed']);
    expect(
      tools.calls.filter((c) => c.body.runId === runId),
      'the server tool is not run again',
    ).to.have.length(1);
  });

  it('keeps a watching client’s stream open while the run waits, and ends it after the continuation', async () => {
    const runId = await startRunOk(stack.api.app, alice.key, { prompt: 'call pick_color {"q":"live"}', tools: [clientTool] });
    const watching = readSse(`${apiUrl}/api/chat/runs/${runId}/stream`, auth(), { timeoutMs: 20_000 });
    const [call] = await parked(runId);
    await new Promise((resolve) => setTimeout(resolve, 300)); // the client is still connected, waiting
    expect((await submit(runId, { results: [{ toolCallId: call!.toolCallId, output: 'teal' }] })).status).to.equal(202);
    const { events } = await watching;
    expect(events.at(-1)!.data).to.equal('[DONE]');
    const statuses = events.filter((e) => e.data.includes('data-run-status')).map((e) => JSON.parse(e.data).data.status);
    expect(statuses).to.deep.equal(['running', 'requires_action', 'running', 'completed']);
    expect(assembledText(events)).to.equal('teal');
  });

  it('checks the answers against the pending calls: duplicate, missing, unexpected, wrong kind → 400 naming the id; after acceptance 409', async () => {
    const runId = await startRunOk(stack.api.app, alice.key, { prompt: 'call pick_color {"q":"a"}\ncall pick_color {"q":"b"}', tools: [clientTool] });
    const [a, b] = await parked(runId);
    const cases: [unknown, string, string][] = [
      [
        {
          results: [
            { toolCallId: a!.toolCallId, output: 1 },
            { toolCallId: a!.toolCallId, output: 2 },
            { toolCallId: b!.toolCallId, output: 3 },
          ],
        },
        'tool_result_duplicate',
        a!.toolCallId,
      ],
      [{ results: [{ toolCallId: a!.toolCallId, output: 1 }] }, 'tool_result_missing', b!.toolCallId],
      [
        {
          results: [
            { toolCallId: a!.toolCallId, output: 1 },
            { toolCallId: b!.toolCallId, output: 2 },
            { toolCallId: 'call_made_up', output: 3 },
          ],
        },
        'tool_result_unexpected',
        'call_made_up',
      ],
      [
        { results: [{ toolCallId: a!.toolCallId, output: 1 }], approvals: [{ toolCallId: b!.toolCallId, approved: true }] },
        'tool_result_unexpected',
        b!.toolCallId,
      ],
    ];
    for (const [body, code, named] of cases) {
      const res = await submit(runId, body);
      expect(res.status, code).to.equal(400);
      expect(res.body.error).to.equal(code);
      expect(res.body.detail).to.include(named);
    }
    expect((await submit(runId, { results: [{ toolCallId: a!.toolCallId }] })).body.error, 'neither output nor error').to.equal('validation_failed');
    expect((await getRun(runId)).status, 'a refused answer changes nothing').to.equal('requires_action');
    const ok = await submit(runId, {
      results: [
        { toolCallId: a!.toolCallId, output: 'x' },
        { toolCallId: b!.toolCallId, error: 'the user closed the dialog' },
      ],
    });
    expect(ok.status).to.equal(202);
    const again = await submit(runId, {
      results: [
        { toolCallId: a!.toolCallId, output: 'x' },
        { toolCallId: b!.toolCallId, output: 'y' },
      ],
    });
    expect(again.status).to.equal(409);
    expect(again.body.error).to.equal('run_not_waiting');
    await waitForRunStatus(stack.api.deps, runId, ['completed']);
    const parts = await expectStreamEqualsHistory(runId);
    expect(parts.filter((p) => p.type === 'tool-pick_color').map((p) => p.state)).to.deep.equal(['output-available', 'output-error']);
  });

  it('continues a run once when 20 posts race: one 202, the others 409, one continuation', async () => {
    const runId = await startRunOk(stack.api.app, alice.key, { prompt: 'call pick_color {"q":"race"}', tools: [clientTool] });
    const [call] = await parked(runId);
    const body = { results: [{ toolCallId: call!.toolCallId, output: 'first' }] };
    const answers = await Promise.all(Array.from({ length: 20 }, () => submit(runId, body)));
    expect(answers.map((r) => r.status).sort()).to.deep.equal([202, ...Array(19).fill(409)]);
    const done = await waitForRunStatus(stack.api.deps, runId, ['completed']);
    expect(done.attempt).to.equal(2);
    expect(await stack.api.deps.db.runAttempt.count({ where: { runId } })).to.equal(2);
  });

  it('honours Idempotency-Key on tool-results: the same key gets the first answer again', async () => {
    const runId = await startRunOk(stack.api.app, alice.key, { prompt: 'call pick_color {"q":"idem"}', tools: [clientTool] });
    const [call] = await parked(runId);
    const body = { results: [{ toolCallId: call!.toolCallId, output: 'once' }] };
    const first = await submit(runId, body, { 'idempotency-key': `tr-${runId}` });
    const second = await submit(runId, body, { 'idempotency-key': `tr-${runId}` });
    expect([first.status, second.status]).to.deep.equal([202, 202]);
    expect(second.body).to.deep.equal(first.body);
    await waitForRunStatus(stack.api.deps, runId, ['completed']);
  });

  it('waits for approval before a guarded server tool: approved, it runs once; denied, it never runs and the model is told', async () => {
    const approvedRun = await startRunOk(stack.api.app, alice.key, { prompt: 'call send_email {"q":"to bob"}', tools: [guardedTool()] });
    const deniedRun = await startRunOk(stack.api.app, alice.key, { prompt: 'call send_email {"q":"to eve"}', tools: [guardedTool()] });
    const [approveMe] = await parked(approvedRun);
    const [denyMe] = await parked(deniedRun);
    expect(approveMe!.kind).to.equal('approval');
    expect(
      tools.calls.filter((c) => [approvedRun, deniedRun].includes(c.body.runId)),
      'nothing sent before approval',
    ).to.deep.equal([]);
    expect(chunkTypes(await storedEvents(stack.api.deps.redis, stack.api.prefix, approvedRun))).to.include('tool-approval-request');
    expect(
      (await submit(approvedRun, { results: [{ toolCallId: approveMe!.toolCallId, output: 'sneaky' }] })).body.error,
      'an approval call takes an approval',
    ).to.equal('tool_result_unexpected');
    expect((await submit(approvedRun, { approvals: [{ toolCallId: approveMe!.toolCallId, approved: true }] })).status).to.equal(202);
    expect((await submit(deniedRun, { approvals: [{ toolCallId: denyMe!.toolCallId, approved: false, reason: 'not eve' }] })).status).to.equal(202);
    await waitForRunStatus(stack.api.deps, approvedRun, ['completed']);
    await waitForRunStatus(stack.api.deps, deniedRun, ['completed']);
    expect(tools.calls.filter((c) => c.body.runId === approvedRun)).to.have.length(1);
    expect(tools.calls.filter((c) => c.body.runId === deniedRun)).to.have.length(0);
    const approvedParts = await expectStreamEqualsHistory(approvedRun);
    expect(approvedParts.find((p) => p.type === 'tool-send_email')!.state).to.equal('output-available');
    const deniedParts = await expectStreamEqualsHistory(deniedRun);
    expect(deniedParts.find((p) => p.type === 'tool-send_email')!.state).to.equal('output-denied');
    expect(chunkTypes(await storedEvents(stack.api.deps.redis, stack.api.prefix, deniedRun))).to.include('tool-output-denied');
    expect(deniedParts.find((p) => p.type === 'text')).to.deep.include({ text: '{"error":"The user denied this tool call."}' });
  });

  it('cancels a waiting run: its pending calls are closed with a cancellation, persisted, the run ends cancelled and cleaned up, the stream ends', async () => {
    const runId = await startRunOk(stack.api.app, alice.key, { prompt: 'call pick_color {"q":"never"}', tools: [clientTool] });
    await parked(runId);
    const res = await request(stack.api.app).post(`/api/chat/runs/${runId}/cancel`).set(auth());
    expect(res.status).to.equal(202);
    expect(res.body).to.deep.equal({ runId, status: 'cancelled' });
    const run = await stack.api.deps.db.run.findUniqueOrThrow({ where: { id: runId } });
    expect(run.status).to.equal('cancelled');
    expect(await stack.api.deps.db.cleanupRecord.count({ where: { runId, reason: 'cancelled' } })).to.equal(1);
    expect((await stack.api.deps.db.session.findUniqueOrThrow({ where: { id: run.sessionId } })).status).to.equal('closed');
    const [message] = await stack.api.deps.db.message.findMany({ where: { runId, role: 'assistant' } });
    expect(message!.interrupted).to.equal(true);
    const tool = (message!.parts as { type: string; state: string; errorText: string }[]).find((p) => p.type === 'tool-pick_color')!;
    expect(tool.state).to.equal('output-error');
    expect(tool.errorText).to.match(/cancelled/);
    const events = await storedEvents(stack.api.deps.redis, stack.api.prefix, runId);
    expect(chunkTypes(events).slice(-4)).to.deep.equal(['tool-output-error', 'data-run-status', 'finish', '[DONE]']);
    expect((await submit(runId, { results: [] })).body.error).to.equal('run_not_waiting');
  });

  it('fails a run left waiting past RUN_ACTION_TIMEOUT_MS with tool_results_timeout, cleaned up, its stream ended', async () => {
    const runId = await startRunOk(stack.api.app, alice.key, { prompt: 'call pick_color {"q":"slow"}', tools: [clientTool] });
    await parked(runId);
    await stack.api.deps.db.run.update({ where: { id: runId }, data: { heartbeatAt: new Date(Date.now() - 10_000) } });
    const report = await sweepStaleRuns(sweepDepsFor(stack.api, { RUN_ACTION_TIMEOUT_MS: '5000' }));
    expect(report.timedOut).to.be.at.least(1);
    const run = await stack.api.deps.db.run.findUniqueOrThrow({ where: { id: runId } });
    expect(run).to.include({ status: 'failed', errorCode: 'tool_results_timeout' });
    expect(await stack.api.deps.db.cleanupRecord.count({ where: { runId } })).to.equal(1);
    expect(chunkTypes(await storedEvents(stack.api.deps.redis, stack.api.prefix, runId)).at(-1)).to.equal('[DONE]');
  });

  it('counts a waiting run towards ACCOUNT_MAX_ACTIVE_RUNS, and gives its place back once it ends', async () => {
    const limited = await startStack({ TOOL_URL_ALLOWLIST: tools.url, ACCOUNT_MAX_ACTIVE_RUNS: '1' });
    try {
      const bob = await createAccount(limited.api.deps.db);
      const runId = await startRunOk(limited.api.app, bob.key, { prompt: 'call pick_color {"q":"hold"}', tools: [clientTool] });
      await waitForRunStatus(limited.api.deps, runId, ['requires_action']);
      const refused = await postRun(limited.api.app, bob.key, { prompt: 'one more' });
      expect(refused.status).to.equal(429);
      expect(refused.body.error).to.equal('too_many_active_runs');
      await request(limited.api.app).post(`/api/chat/runs/${runId}/cancel`).set(auth(bob));
      await waitFor(async () => (await postRun(limited.api.app, bob.key, { prompt: 'now' })).status === 202, { what: 'the place to come back' });
    } finally {
      await limited.close();
    }
  });
});
