import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import request from 'supertest';
import { createAccount, type TestAccount } from '../support/factories.js';
import { openInProcessWorkers, spawnApi, spawnWorker, startApi, startWorker, waitFor, workerReady, type WorkerProcess } from '../support/harness.js';
import { startMcpServer, type TestMcpServer } from '../support/mcpServer.js';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../support/otlpReceiver.js';
import { startToolServer, type ToolServer } from '../support/toolServer.js';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhookReceiver.js';
import { uniquePrefix } from '../support/testConfig.js';
import { createDatabase } from '../../shared/infra/db.js';
import { TEST_DATABASE_URL } from '../support/testConfig.js';

const SERVER = 2;
const CONSUMER = 5;
const CLIENT = 3;
const PRODUCER = 4;

/**
 * One OpenTelemetry trace per run (SPEC section 16), across an api and a worker running as their
 * own processes, exported over OTLP/HTTP to a real receiver in the test that decodes what the
 * SDK's exporter sends.
 */
describe('tracing: one OpenTelemetry trace per run, across processes', function () {
  this.timeout(120_000);
  let otlp: OtlpReceiver;
  let tools: ToolServer;
  let mcp: TestMcpServer;
  let hooks: WebhookReceiver;
  const processes: WorkerProcess[] = [];
  const database = createDatabase(TEST_DATABASE_URL, 2);
  let env: Record<string, string>;
  let base: string;
  let prefix: string;
  let alice: TestAccount;

  before(async () => {
    // An in-process worker left open by an earlier test would deliver this test's webhooks, untraced.
    expect(openInProcessWorkers(), 'in-process workers left open by earlier tests').to.deep.equal([]);
    otlp = await startOtlpReceiver();
    tools = await startToolServer();
    mcp = await startMcpServer();
    hooks = await startWebhookReceiver();
    prefix = uniquePrefix();
    env = {
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp.endpoint,
      OTEL_BSP_SCHEDULE_DELAY: '100',
      TOOL_URL_ALLOWLIST: `${tools.url},${mcp.origin},${hooks.url}`,
      RUN_LOCK_MS: '2000',
      RUN_STALE_AFTER_MS: '4000',
      RUN_SWEEP_EVERY_MS: '1000',
      WEBHOOK_POLL_MS: '50',
    };
    const api = spawnApi(prefix, env);
    processes.push(api);
    base = await api.url;
    env.PUBLIC_BASE_URL = base;
    const worker = spawnWorker(prefix, env);
    processes.push(worker);
    await workerReady(worker);
    alice = await createAccount(database.db);
  });
  after(async () => {
    for (const p of processes) p.child.kill('SIGKILL');
    await Promise.all(processes.map((p) => p.stopped));
    await Promise.all([otlp?.close(), tools?.close(), mcp?.close(), hooks?.close(), database.close()]);
  });

  const spansOf = (traceId: string) => otlp.spans.filter((span) => span.traceId === traceId);
  const one = (spans: ReceivedSpan[], name: string) => {
    const found = spans.filter((span) => span.name === name);
    expect(
      found.map((s) => s.name),
      `one span named ${name} in ${spans.map((s) => s.name).join(', ')}`,
    ).to.have.length(1);
    return found[0]!;
  };
  const waitForRun = (runId: string, statuses: string[]) =>
    waitFor(
      async () => {
        const run = await database.db.run.findUnique({ where: { id: runId } });
        return run && statuses.includes(run.status) ? run : null;
      },
      { timeoutMs: 60_000, what: `run ${runId} to end` },
    );

  it('continues the caller’s trace: POST → attempt → model call and tool calls, MCP and webhook; every outbound call carries its traceparent', async () => {
    const callerTrace = randomBytes(16).toString('hex');
    const callerSpan = randomBytes(8).toString('hex');
    const res = await request(base)
      .post('/api/chat/runs')
      .set({ authorization: `Bearer ${alice.key}`, traceparent: `00-${callerTrace}-${callerSpan}-01` })
      .send({
        prompt: 'call lookup {"q":1}\ncall calc__add {"a":2,"b":3}',
        tools: [{ name: 'lookup', url: tools.toolUrl('lookup'), inputSchema: { type: 'object' } }],
        mcpServers: [{ name: 'calc', url: mcp.url }],
        webhook: { url: hooks.url, events: ['run.completed'] },
      });
    expect(res.status, JSON.stringify(res.body)).to.equal(202);
    const runId = res.body.runId as string;
    await waitForRun(runId, ['completed']);
    const hook = await waitFor(() => hooks.deliveries.find((d) => d.body.runId === runId), { what: 'the webhook' });
    expect(String(hook.headers.traceparent ?? ''), 'the delivery came from a traced worker, in the run’s trace').to.match(new RegExp(`^00-${callerTrace}-`));
    const view = await request(base).get(`/api/chat/runs/${runId}`).set('authorization', `Bearer ${alice.key}`);
    expect(view.body.traceId).to.equal(callerTrace);

    await waitFor(() => spansOf(callerTrace).some((span) => span.name === 'webhook run.completed'), { what: 'the webhook span', timeoutMs: 20_000 }).catch(
      (err: Error) => {
        throw new Error(
          `${err.message}; spans of the trace: ${spansOf(callerTrace)
            .map((s) => s.name)
            .join(', ')}; worker output: ${processes[1]!.output().slice(-3000)}`,
        );
      },
    );
    await waitFor(() => spansOf(callerTrace).some((span) => span.name === 'process run' && span.attributes['runyard.run.status'] === 'completed'), {
      what: 'the attempt span',
    });
    const spans = spansOf(callerTrace);
    const post = one(spans, 'POST /api/chat/runs');
    expect(post).to.include({ service: 'runyard-api', kind: SERVER, parentSpanId: callerSpan });
    const enqueue = one(spans, 'enqueue run');
    expect(enqueue).to.include({ service: 'runyard-api', kind: PRODUCER, parentSpanId: post.spanId });
    const attempt = one(spans, 'process run');
    expect(attempt).to.include({ service: 'runyard-worker', kind: CONSUMER, parentSpanId: enqueue.spanId });
    expect(attempt.attributes).to.include({ 'runyard.run.id': runId, 'runyard.run.attempt': 1, 'messaging.system': 'bullmq' });
    const calls = spans.filter((span) => span.name === 'chat echo');
    expect(calls, 'a step with the tool calls, then the answer').to.have.length(2);
    for (const call of calls) {
      expect(call).to.include({ kind: CLIENT, parentSpanId: attempt.spanId });
      expect(call.attributes).to.include({ 'gen_ai.operation.name': 'chat', 'gen_ai.provider.name': 'runyard.local', 'gen_ai.request.model': 'echo' });
      expect(call.attributes['gen_ai.usage.input_tokens']).to.be.a('number');
      expect(call.attributes['gen_ai.usage.output_tokens']).to.be.a('number');
      expect(call.attributes['gen_ai.response.finish_reasons']).to.be.an('array');
    }
    const lookup = one(spans, 'execute_tool lookup');
    const add = one(spans, 'execute_tool calc__add');
    for (const tool of [lookup, add]) expect(tool.parentSpanId).to.equal(attempt.spanId);
    expect(add.attributes).to.include({ 'gen_ai.tool.type': 'extension', 'gen_ai.operation.name': 'execute_tool' });
    const webhook = one(spans, 'webhook run.completed');
    expect(webhook).to.include({ kind: CLIENT, parentSpanId: enqueue.spanId });

    // Every outbound call carried a traceparent of this trace: from the span that made it.
    const traceparentOf = (headers: Record<string, unknown>) => String(headers.traceparent ?? '');
    const toolCall = tools.calls.find((call) => call.body.runId === runId)!;
    expect(traceparentOf(toolCall.headers)).to.equal(`00-${callerTrace}-${lookup.spanId}-01`);
    const mcpCalls = mcp.requests.filter((headers) => traceparentOf(headers).includes(callerTrace));
    expect(mcpCalls.length, 'the MCP requests carry the trace').to.be.at.least(1);
    expect(
      mcpCalls.some((headers) => traceparentOf(headers).includes(add.spanId)),
      'the tools/call request, from its tool span',
    ).to.equal(true);
    const delivery = hooks.deliveries.find((d) => d.body.runId === runId)!;
    expect(traceparentOf(delivery.headers)).to.equal(`00-${callerTrace}-${webhook.spanId}-01`);
  });

  it('a worker killed with kill -9 mid-run: the trace shows both attempts under the run', async () => {
    const slow = spawnWorker(prefix, { ...env, LOCAL_MODEL_DELAY_MS: '300' });
    processes.push(slow);
    await workerReady(slow);
    // Only the slow worker takes jobs while the run starts: stop the first one.
    processes[1]!.child.kill('SIGKILL');
    await processes[1]!.stopped;
    const res = await request(base)
      .post('/api/chat/runs')
      .set('authorization', `Bearer ${alice.key}`)
      .send({ prompt: Array.from({ length: 40 }, (_, i) => `w${i}`).join(' ') });
    const runId = res.body.runId as string;
    const running = await waitForRun(runId, ['running']);
    slow.child.kill('SIGKILL');
    await slow.stopped;
    const next = spawnWorker(prefix, env);
    processes.push(next);
    await workerReady(next);
    const run = await waitForRun(runId, ['completed']);
    expect(run.attempt).to.equal(2);
    const traceId = running.traceparent!.split('-')[1]!;
    await waitFor(() => spansOf(traceId).filter((span) => span.name === 'process run').length === 2, { what: 'both attempts’ spans', timeoutMs: 20_000 });
    const enqueue = one(spansOf(traceId), 'enqueue run');
    const attempts = spansOf(traceId)
      .filter((span) => span.name === 'process run')
      .sort((a, b) => Number(a.attributes['runyard.run.attempt']) - Number(b.attributes['runyard.run.attempt']));
    expect(attempts.map((span) => span.attributes['runyard.run.attempt'])).to.deep.equal([1, 2]);
    expect(attempts.map((span) => span.parentSpanId)).to.deep.equal([enqueue.spanId, enqueue.spanId]);
    expect(attempts[0]!.status).to.include({ code: 2 });
    expect(attempts[0]!.status.message).to.match(/^worker_lost/);
    expect(attempts[1]!.attributes['runyard.run.status']).to.equal('completed');
  });

  it('a continuation after requires_action stays in the run’s trace and links the tool-results request that continued it', async () => {
    const res = await request(base)
      .post('/api/chat/runs')
      .set('authorization', `Bearer ${alice.key}`)
      .send({ prompt: 'call hold {}', tools: [{ name: 'hold', inputSchema: { type: 'object' } }] });
    const runId = res.body.runId as string;
    const parked = await waitForRun(runId, ['requires_action']);
    const pending = (await request(base).get(`/api/chat/runs/${runId}`).set('authorization', `Bearer ${alice.key}`)).body.pendingToolCalls as {
      toolCallId: string;
    }[];
    const callerTrace = randomBytes(16).toString('hex');
    const answered = await request(base)
      .post(`/api/chat/runs/${runId}/tool-results`)
      .set({ authorization: `Bearer ${alice.key}`, traceparent: `00-${callerTrace}-${randomBytes(8).toString('hex')}-01` })
      .send({ results: pending.map((call) => ({ toolCallId: call.toolCallId, output: 'held' })) });
    expect(answered.status).to.equal(202);
    await waitForRun(runId, ['completed']);
    const runTrace = parked.traceparent!.split('-')[1]!;
    await waitFor(() => spansOf(runTrace).filter((span) => span.name === 'process run').length === 2, { what: 'both attempts', timeoutMs: 20_000 });
    await waitFor(() => spansOf(callerTrace).some((span) => span.name === 'POST /api/chat/runs/:runId/tool-results'), { what: 'the continuation request' });
    const continuation = one(spansOf(callerTrace), 'POST /api/chat/runs/:runId/tool-results');
    const second = spansOf(runTrace).find((span) => span.name === 'process run' && span.attributes['runyard.run.attempt'] === 2)!;
    expect(second.links).to.deep.include({ traceId: callerTrace, spanId: continuation.spanId });
  });

  it('without OTEL_EXPORTER_OTLP_ENDPOINT no exporter runs: no trace id, no traceparent sent', async () => {
    const requestsBefore = otlp.requests;
    const api = startApi({ TOOL_URL_ALLOWLIST: tools.url });
    const worker = await startWorker(api.prefix, { PUBLIC_BASE_URL: await api.url(), TOOL_URL_ALLOWLIST: tools.url });
    try {
      const bob = await createAccount(api.deps.db);
      const res = await request(api.app)
        .post('/api/chat/runs')
        .set({ authorization: `Bearer ${bob.key}`, traceparent: `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01` })
        .send({ prompt: 'call untraced {}', tools: [{ name: 'untraced', url: tools.toolUrl('untraced'), inputSchema: { type: 'object' } }] });
      await waitForRun(res.body.runId as string, ['completed']);
      const view = await request(api.app).get(`/api/chat/runs/${res.body.runId}`).set(bob.auth);
      expect(view.body.traceId).to.equal(null);
      expect(tools.callsOf('untraced')[0]!.headers.traceparent).to.equal(undefined);
      expect(otlp.requests, 'nothing exported by this process').to.equal(requestsBefore);
    } finally {
      await worker.close(1_000);
      await api.close();
    }
  });
});
