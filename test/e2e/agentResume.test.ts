import { expect } from 'chai';
import request from 'supertest';
import { comparableParts, readWithAiSdk } from '../support/aiSdkClient.js';
import { createAccount, type TestAccount } from '../support/factories.js';
import { startFakeProviders, type FakeProviders } from '../support/fakeProviders.js';
import { spawnWorker, startApi, waitFor, workerReady, type ApiHarness, type WorkerProcess } from '../support/harness.js';
import { startRunOk, waitForRunStatus } from '../support/runs.js';
import { startToolServer, type ToolServer } from '../support/toolServer.js';
import { findExecutable } from '../../shared/workspaces/workspaceRequest.js';

describe('agent runs across a worker crash (spawned worker processes)', function () {
  this.timeout(90_000);
  let fake: FakeProviders;
  let tools: ToolServer;
  let api: ApiHarness;
  let alice: TestAccount;
  const workers: WorkerProcess[] = [];

  before(async () => {
    fake = await startFakeProviders();
    tools = await startToolServer();
  });
  after(async () => {
    await tools.close();
    await fake.close();
  });
  beforeEach(async () => {
    api = startApi({ OPENAI_API_KEY: 'sk-fake', OPENAI_BASE_URL: fake.openaiBaseUrl, TOOL_URL_ALLOWLIST: tools.url });
    alice = await createAccount(api.deps.db);
  });
  afterEach(async () => {
    for (const worker of workers.splice(0)) {
      if (worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill('SIGKILL');
      await worker.stopped;
    }
    await api.close();
  });

  const spawn = () => {
    const worker = spawnWorker(api.prefix, {
      RUN_LOCK_MS: '2000',
      WORKER_CONCURRENCY: '4',
      OPENAI_API_KEY: 'sk-fake',
      OPENAI_BASE_URL: fake.openaiBaseUrl,
      TOOL_URL_ALLOWLIST: tools.url,
      TOOL_TIMEOUT_MS: '30000',
    });
    workers.push(worker);
    return worker;
  };

  it('after kill -9 during step 2’s slow tool, another worker resumes: step 1’s tools ran once, step 2’s call is resent with the same webhook-id, one answer', async () => {
    const marker = `trip-${Date.now()}`;
    tools.behave('slow', (_call, nth) => (nth === 1 ? { delayMs: 60_000, body: { output: 'never sent' } } : { body: { output: { booked: true } } }));
    const [a, b] = [spawn(), spawn()];
    await Promise.all([workerReady(a), workerReady(b)]);
    const schema = { type: 'object', properties: { q: { type: 'string' } } };
    const prompt = `${marker} [[call1:fast:{"q":"one"}]] [[call1:fast:{"q":"two"}]] [[call2:slow:{"q":"book"}]]`;
    const runId = await startRunOk(api.app, alice.key, {
      prompt,
      model: 'openai/gpt-4o',
      tools: ['fast', 'slow'].map((name) => ({ name, inputSchema: schema, url: tools.toolUrl(name) })),
    });
    await waitFor(() => tools.callsOf('slow').some((c) => c.body.runId === runId), { what: 'step 2’s tool to be called', timeoutMs: 30_000 });
    const running = await api.deps.db.run.findUniqueOrThrow({ where: { id: runId } });
    const victim = running.workerId!.endsWith(`:${a.child.pid}`) ? a : b;
    victim.child.kill('SIGKILL');

    const done = await waitForRunStatus(api.deps, runId, ['completed'], 45_000);
    expect(done.attempt).to.equal(2);
    expect(done.steps).to.equal(3);
    const mine = (name: string) => tools.callsOf(name).filter((c) => c.body.runId === runId);
    expect(
      mine('fast').map((c) => c.body.input),
      'step 1’s calls exactly once',
    ).to.have.deep.members([{ q: 'one' }, { q: 'two' }]);
    expect(mine('slow').length).to.be.within(1, 2);
    expect(new Set(mine('slow').map((c) => c.headers['webhook-id'])).size, 'the same webhook-id when resent').to.equal(1);
    const modelCalls = fake.requests.filter((r) => JSON.stringify(r.body.messages).includes(marker));
    expect(modelCalls, 'no model call repeated for a persisted step').to.have.length(3);

    const messages = await api.deps.db.message.findMany({ where: { runId, role: 'assistant' } });
    expect(messages).to.have.length(1);
    const url = await api.url();
    const { message, errors } = await readWithAiSdk(`${url}/api/chat/runs/${runId}/stream`, { authorization: `Bearer ${alice.key}` });
    expect(errors).to.deep.equal([]);
    const history = (
      await request(api.app)
        .get(`/api/chats/${done.chatId}/messages`)
        .set({ authorization: `Bearer ${alice.key}` })
    ).body.messages;
    const answer = history.find((m: { role: string }) => m.role === 'assistant');
    expect(comparableParts(message!.parts)).to.deep.equal(comparableParts(answer.parts));
    expect(answer.parts.map((p: { type: string }) => p.type)).to.deep.equal([
      'step-start',
      'tool-fast',
      'tool-fast',
      'step-start',
      'tool-slow',
      'step-start',
      'text',
    ]);
    expect(answer.parts.find((p: { type: string }) => p.type === 'tool-slow')).to.deep.include({ state: 'output-available', output: { booked: true } });
  });

  it('charges a model call whose worker was killed mid-call (kill -9): the next attempt charges it, estimated, before its own', async () => {
    const spawnSlow = () => {
      const worker = spawnWorker(api.prefix, { RUN_LOCK_MS: '2000', WORKER_CONCURRENCY: '4', OPENAI_API_KEY: 'sk-fake', OPENAI_BASE_URL: fake.openaiBaseUrl });
      workers.push(worker);
      return worker;
    };
    const first = spawnSlow();
    await workerReady(first);
    const bob = await createAccount(api.deps.db);
    const long = Array.from({ length: 120 }, (_, i) => `token${i}`).join(' ');
    const runId = await startRunOk(api.app, bob.key, { prompt: `[[slow:100]] ${long}`, model: 'openai/gpt-4o-mini' });
    await waitFor(async () => (await api.deps.redis.xlen(`${api.prefix}:run:{${runId}}:events`)) > 8, { what: 'some text streamed', timeoutMs: 30_000 });
    first.child.kill('SIGKILL');
    await first.stopped;
    const second = spawnSlow();
    await workerReady(second);
    const done = await waitForRunStatus(api.deps, runId, ['completed'], 60_000);
    expect(done.attempt).to.equal(2);
    const usage = done.usage as { inputTokens: number; outputTokens: number };
    const consumed = (await request(api.app).get('/api/usage').set(bob.auth)).body.consumed.tokens as number;
    const lost = consumed - (usage.inputTokens + usage.outputTokens);
    expect(lost, `the lost call was charged (consumed ${consumed}, the final attempt's ${usage.inputTokens + usage.outputTokens})`).to.be.at.least(100);
  });

  it('continues a workspace on another worker after kill -9 between two exec steps: the first step’s file, each appended line once', async function () {
    if (!findExecutable('bwrap')) {
      if (process.env.CI === 'true') throw new Error('bwrap is missing: .ci/run should have installed the bubblewrap package');
      this.skip();
    }
    const first = spawn();
    await workerReady(first);
    const prompt =
      'work [[call1:exec:{"command":"echo one >> log.txt"}]] [[call2:exec:{"command":"echo two >> log.txt; sleep 4"}]] [[call3:exec:{"command":"cat log.txt"}]]';
    const runId = await startRunOk(api.app, alice.key, { prompt, model: 'openai/gpt-4o-mini', workspace: true });
    await waitFor(
      async () => {
        const step = await api.deps.db.runStep.findFirst({ where: { runId, step: 1 } });
        return step !== null;
      },
      { what: 'step 2 persisted (its exec is running)', timeoutMs: 30_000 },
    );
    await new Promise((resolve) => setTimeout(resolve, 500));
    first.child.kill('SIGKILL');
    await first.stopped;
    const second = spawn();
    await workerReady(second);
    const done = await waitForRunStatus(api.deps, runId, ['completed'], 60_000);
    expect(done.attempt).to.equal(2);
    const last = await api.deps.db.runStep.findFirstOrThrow({ where: { runId, step: 2 } });
    const [call] = last.toolCalls as { toolCallId: string }[];
    const result = (last.results as Record<string, { output: { stdout: string } }>)[call!.toolCallId]!;
    expect(result.output.stdout, 'step 1’s line once, step 2’s line once (its lost first try left nothing)').to.equal('one\ntwo\n');
  });
});
