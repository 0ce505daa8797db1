import { expect } from 'chai';
import request from 'supertest';
import { hashKey } from '../../shared/accounts/keys.js';
import { startApi, startWorker, waitFor, type ApiHarness } from '../support/harness.js';
import { createAccount, type TestAccount } from '../support/factories.js';
import { startRunOk, waitForRunStatus } from '../support/runs.js';
import type { FakeProviders } from '../support/fakeProviders.js';
import { startStack, type Stack } from '../support/stack.js';
import { chunkTypes, finalText, storedEvents } from '../support/streams.js';

describe('the worker', () => {
  let stack: Stack;
  let fake: FakeProviders;
  let api: ApiHarness;
  let alice: TestAccount;
  let env: Record<string, string>;

  before(async () => {
    stack = await startStack({ PROVIDER_IDLE_TIMEOUT_MS: '700', RUN_MAX_ATTEMPTS: '3' });
    ({ fake, api, alice, env } = stack);
  });
  after(() => stack.close());

  const db = () => api.deps.db;
  const events = (runId: string) => storedEvents(api.deps.redis, api.prefix, runId);

  async function expectCleanedUpOnce(runId: string) {
    await waitFor(() => db().cleanupRecord.count({ where: { runId } }), { what: 'the cleanup record' });
    const run = await db().run.findUniqueOrThrow({ where: { id: runId } });
    expect(await db().cleanupRecord.count({ where: { runId } })).to.equal(1);
    expect(await db().apiKey.count({ where: { runId, revokedAt: null } }), 'no live ephemeral key').to.equal(0);
    expect((await db().session.findUniqueOrThrow({ where: { id: run.sessionId } })).status).to.equal('closed');
  }

  it('runs local/echo: streams the answer, persists the message with usage, completes and cleans up', async () => {
    const runId = await startRunOk(api.app, alice.key, { prompt: 'the quick brown fox' });
    const run = await waitForRunStatus(api.deps, runId, ['completed']);
    expect(run.attempt).to.equal(1);
    expect(run.startedAt).to.be.instanceOf(Date);
    expect(run.finishedAt).to.be.instanceOf(Date);
    expect(run.workerId).to.be.a('string');
    expect(run.costMicros).to.equal(0n);
    const [message] = await db().message.findMany({ where: { runId, role: 'assistant' } });
    expect(message!.parts).to.deep.equal([{ type: 'step-start' }, { type: 'text', text: 'the quick brown fox' }]);
    expect(message).to.include({ attempt: 1, outputTokens: 4, interrupted: false, model: 'local/echo' });
    expect(message!.providerResponseId).to.match(/^echo-/);
    expect(message!.runtimeMs).to.be.a('number');
    const stream = await events(runId);
    expect(chunkTypes(stream)).to.deep.equal([
      'start',
      'data-run-status',
      'start-step',
      'text-start',
      ...Array(chunkTypes(stream).filter((t) => t === 'text-delta').length).fill('text-delta'),
      'text-end',
      'finish-step',
      'data-run-status',
      'finish',
      '[DONE]',
    ]);
    expect(finalText(stream)).to.equal('the quick brown fox');
    await expectCleanedUpOnce(runId);
    const attempts = await db().runAttempt.findMany({ where: { runId } });
    expect(attempts.map((a) => a.status)).to.deep.equal(['completed']);
  });

  it('runs openai/* through the OpenAI SDK with usage, cost and the provider response id, and never puts the run key in the prompt', async () => {
    const before = fake.requests.length;
    const runId = await startRunOk(api.app, alice.key, { prompt: 'hello openai', model: 'openai/gpt-4o-mini', system: 'be nice' });
    const run = await waitForRunStatus(api.deps, runId, ['completed']);
    const [message] = await db().message.findMany({ where: { runId, role: 'assistant' } });
    expect(message!.parts).to.deep.equal([{ type: 'step-start' }, { type: 'text', text: 'Echo: hello openai' }]);
    expect(message!.providerResponseId).to.match(/^chatcmpl-/);
    expect(message).to.include({ outputTokens: 3, cachedInputTokens: 2, reasoningTokens: 1 });
    expect(run.costMicros).to.be.a('bigint');
    const sent = fake.requests.slice(before).find((r) => r.provider === 'openai')!;
    expect(sent.headers.authorization).to.equal('Bearer sk-fake-openai');
    expect(sent.body).to.include({ model: 'gpt-4o-mini', stream: true });
    expect(sent.body.stream_options).to.deep.equal({ include_usage: true });
    expect(JSON.stringify(sent.body)).to.not.match(/ry_ek_/);
    expect((sent.body.messages as { role: string }[])[0]).to.deep.equal({ role: 'system', content: 'be nice' });
    await expectCleanedUpOnce(runId);
  });

  it('runs anthropic/* through the Anthropic SDK with usage and the message id', async () => {
    const runId = await startRunOk(api.app, alice.key, { prompt: 'hello claude', model: 'anthropic/claude-haiku-4-5', maxOutputTokens: 50 });
    const run = await waitForRunStatus(api.deps, runId, ['completed']);
    const [message] = await db().message.findMany({ where: { runId, role: 'assistant' } });
    expect(message!.parts).to.deep.equal([{ type: 'step-start' }, { type: 'text', text: 'Echo: hello claude' }]);
    expect(message!.providerResponseId).to.match(/^msg_/);
    expect(message).to.include({ outputTokens: 3, cachedInputTokens: 3 });
    expect(run.costMicros).to.be.a('bigint');
    const sent = fake.requests.findLast((r) => r.provider === 'anthropic')!;
    // The SDK sends the key as a Bearer token (older versions used x-api-key).
    expect(sent.headers.authorization ?? `Bearer ${sent.headers['x-api-key']}`).to.equal('Bearer sk-ant-fake');
    expect(sent.body).to.include({ max_tokens: 50, stream: true });
  });

  it('labels metrics with known model ids only: a caller’s made-up model is "other", on the api and the worker', async () => {
    const runId = await startRunOk(api.app, alice.key, { prompt: 'labels', model: 'openai/made-up-model-for-cardinality' });
    await waitForRunStatus(api.deps, runId, ['completed']);
    const apiMetrics = (await request(api.app).get('/metrics')).text;
    const workerMetrics = await stack.worker.deps.metrics.registry.metrics();
    for (const text of [apiMetrics, workerMetrics]) {
      expect(text).to.not.include('made-up-model-for-cardinality');
      expect(text).to.match(/model="other"/);
    }
  });

  it('retries a 429 after its Retry-After and completes; listeners are told the attempt started over', async () => {
    const runId = await startRunOk(api.app, alice.key, { prompt: `rate limited [[fail-once:429:${Date.now()}]]`, model: 'openai/gpt-4o' });
    const run = await waitForRunStatus(api.deps, runId, ['completed'], 20_000);
    expect(run.attempt).to.equal(2);
    const attempts = await db().runAttempt.findMany({ where: { runId }, orderBy: { attempt: 'asc' } });
    expect(attempts.map((a) => [a.status, a.errorCode])).to.deep.equal([
      ['failed', 'provider_rate_limited'],
      ['completed', null],
    ]);
    expect(attempts[1]!.startedAt.getTime() - attempts[0]!.finishedAt!.getTime(), 'waited for retry-after: 1').to.be.at.least(900);
    const stream = await events(runId);
    expect(chunkTypes(stream)).to.include('data-attempt');
    expect(finalText(stream)).to.equal('Echo: rate limited');
    expect(await db().message.count({ where: { runId, role: 'assistant' } })).to.equal(1);
  });

  it('retries a stream cut mid-answer, and the client ends with the second attempt’s text only', async () => {
    const runId = await startRunOk(api.app, alice.key, { prompt: `one two three four five [[cut-once:${Date.now()}]]`, model: 'anthropic/claude-haiku-4-5' });
    await waitForRunStatus(api.deps, runId, ['completed']);
    const stream = await events(runId);
    const deltasBeforeRetry = stream
      .slice(
        0,
        stream.findIndex((e) => e.chunk?.type === 'data-attempt'),
      )
      .filter((e) => e.chunk?.type === 'text-delta');
    expect(deltasBeforeRetry.length, 'attempt 1 streamed part of an answer').to.be.greaterThan(0);
    expect(finalText(stream)).to.equal('Echo: one two three four five');
    const attempts = await db().runAttempt.findMany({ where: { runId }, orderBy: { attempt: 'asc' } });
    expect(attempts[0]!.errorCode).to.equal('provider_stream_incomplete');
  });

  it('retries a stream that hangs past the idle timeout', async () => {
    const runId = await startRunOk(api.app, alice.key, { prompt: `a b c d [[hang-once:${Date.now()}]]`, model: 'openai/gpt-4o' });
    await waitForRunStatus(api.deps, runId, ['completed']);
    const attempts = await db().runAttempt.findMany({ where: { runId }, orderBy: { attempt: 'asc' } });
    expect(attempts.map((a) => a.errorCode)).to.deep.equal(['provider_timeout', null]);
  });

  it('fails at once on a provider 400, without retrying, and cleans up', async () => {
    const runId = await startRunOk(api.app, alice.key, { prompt: 'bad request [[fail:400]]', model: 'openai/gpt-4o' });
    const run = await waitForRunStatus(api.deps, runId, ['failed']);
    expect(run).to.include({ attempt: 1, errorCode: 'provider_rejected', errorRetryable: false });
    const res = await request(api.app).get(`/api/chat/runs/${runId}`).set(alice.auth);
    expect(res.body.error).to.deep.include({ code: 'provider_rejected', retryable: false });
    expect(chunkTypes(await events(runId))).to.include.members(['error', 'finish', '[DONE]']);
    await expectCleanedUpOnce(runId);
  });

  it('fails at once with provider_auth_failed, naming whose key, when the provider refuses the key (401)', async () => {
    for (const model of ['openai/gpt-4o', 'anthropic/claude-haiku-4-5']) {
      const runId = await startRunOk(api.app, alice.key, { prompt: 'who am I [[fail:401]]', model });
      const run = await waitForRunStatus(api.deps, runId, ['failed']);
      expect(run, model).to.include({ attempt: 1, errorCode: 'provider_auth_failed', errorRetryable: false });
      expect(run.errorMessage).to.match(/refused the deployment's key \((OPENAI|ANTHROPIC)_API_KEY\)/);
    }
  });

  it('fails after RUN_MAX_ATTEMPTS retryable failures, with the last error, and cleans up once', async () => {
    const runId = await startRunOk(api.app, alice.key, { prompt: 'down [[fail:500]]', model: 'anthropic/claude-haiku-4-5' });
    const run = await waitForRunStatus(api.deps, runId, ['failed'], 20_000);
    expect(run).to.include({ attempt: 3, errorCode: 'provider_unavailable', errorRetryable: true });
    expect(await db().runAttempt.count({ where: { runId, status: 'failed' } })).to.equal(3);
    await expectCleanedUpOnce(runId);
  });

  it('hands the run key to the execution context, not the job data in plaintext', async () => {
    const runId = await startRunOk(api.app, alice.key, { prompt: 'secret check' });
    await waitForRunStatus(api.deps, runId, ['completed']);
    const job = await api.deps.runQueues.forRun(runId).getJob(runId);
    expect(JSON.stringify(job?.data ?? {})).to.not.match(/ry_ek_/);
    const key = await db().apiKey.findFirstOrThrow({ where: { runId } });
    expect(key.hash).to.have.length(64);
    expect(key.hash).to.not.equal(hashKey(''));
  });

  describe('cancel', () => {
    it('cancels a queued run before it starts: the job is gone and the run cleaned up', async () => {
      const idle = startApi(); // no worker on this prefix
      try {
        const bob = await createAccount(idle.deps.db);
        const runId = await startRunOk(idle.app, bob.key, { prompt: 'never runs' });
        const res = await request(idle.app).post(`/api/chat/runs/${runId}/cancel`).set(bob.auth);
        expect(res.status).to.equal(202);
        expect(res.body).to.deep.equal({ runId, status: 'cancelled' });
        expect(await idle.deps.runQueues.forRun(runId).getJob(runId)).to.equal(undefined);
        expect(await idle.deps.db.cleanupRecord.count({ where: { runId, reason: 'cancelled' } })).to.equal(1);
        expect(await idle.deps.db.apiKey.count({ where: { runId, revokedAt: null } })).to.equal(0);
        // Its stream ends, so a client already watching it stops waiting.
        expect(chunkTypes(await storedEvents(idle.deps.redis, idle.prefix, runId))).to.deep.equal(['start', 'data-run-status', 'finish', '[DONE]']);
        const again = await request(idle.app).post(`/api/chat/runs/${runId}/cancel`).set(bob.auth);
        expect(again.status).to.equal(409);
        expect(again.body.error).to.equal('run_finished');
      } finally {
        await idle.close();
      }
    });

    it('stops a running run within a second, keeps the partial answer marked interrupted and ends cancelled', async () => {
      const slow = startApi({ ...env });
      const slowWorker = await startWorker(slow.prefix, { ...env, LOCAL_MODEL_DELAY_MS: '100' });
      try {
        const bob = await createAccount(slow.deps.db);
        const words = Array.from({ length: 200 }, (_, i) => `w${i}`).join(' ');
        const runId = await startRunOk(slow.app, bob.key, { prompt: words });
        await waitFor(async () => (await storedEvents(slow.deps.redis, slow.prefix, runId)).filter((e) => e.chunk?.type === 'text-delta').length >= 3, {
          what: 'some output',
        });
        const asked = Date.now();
        const res = await request(slow.app).post(`/api/chat/runs/${runId}/cancel`).set(bob.auth);
        expect(res.status).to.equal(202);
        const run = await waitForRunStatus(slow.deps, runId, ['cancelled'], 5_000);
        expect(run.finishedAt!.getTime() - asked).to.be.below(1_000);
        const [message] = await slow.deps.db.message.findMany({ where: { runId, role: 'assistant' } });
        expect(message!.interrupted).to.equal(true);
        const text = (message!.parts as { type: string; text: string }[]).find((part) => part.type === 'text')!.text;
        expect(text.length).to.be.greaterThan(0);
        expect(words.startsWith(text.trimEnd())).to.equal(true);
        expect(text.length).to.be.below(words.length);
        expect(chunkTypes(await storedEvents(slow.deps.redis, slow.prefix, runId)).slice(-3)).to.deep.equal(['data-run-status', 'finish', '[DONE]']);
        await waitFor(() => slow.deps.db.cleanupRecord.count({ where: { runId, reason: 'cancelled' } }));
      } finally {
        await slowWorker.close(1_000);
        await slow.close();
      }
    });
  });
});
