import { expect } from 'chai';
import request from 'supertest';
import { sweepStaleRuns } from '../../worker/fleet/sweep.js';
import { applyDefaultLimits, setAccountLimits } from '../../shared/accounts/usageLimits.js';
import { createAccount, createEphemeralKey, type TestAccount } from '../support/factories.js';
import { sweepDepsFor, waitFor } from '../support/harness.js';
import { answerPendingCalls, postRun, startParkedRun, startRunOk, waitForRunStatus } from '../support/runs.js';
import { startStack, type Stack } from '../support/stack.js';
import { startToolServer, type ToolServer } from '../support/toolServer.js';
import { readSse } from '../support/sse.js';

const ADMIN = 'admin-token-0123456789abcdef';

describe('spend limits (SPEC section 14)', function () {
  this.timeout(120_000);
  let stack: Stack;
  let tools: ToolServer;
  before(async () => {
    tools = await startToolServer();
    stack = await startStack({ ADMIN_TOKEN: ADMIN, TOOL_URL_ALLOWLIST: tools.url });
  });
  after(async () => {
    await stack.close();
    await tools.close();
  });

  const admin = { authorization: `Bearer ${ADMIN}` };
  const setLimits = async (account: TestAccount, limits: Record<string, unknown>) => {
    const res = await request(stack.api.app).put(`/api/admin/accounts/${account.accountId}/limits`).set(admin).send(limits);
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    return res.body;
  };
  const usage = async (account: TestAccount) => (await request(stack.api.app).get('/api/usage').set(account.auth)).body;
  const consumedTokens = async (account: TestAccount) => (await usage(account)).consumed.tokens as number;
  /** A local/echo run whose model calls `echo_tool` once per group: `steps` tool steps, then its answer. */
  const toolSteps = (steps: number) => ({
    prompt: Array.from({ length: steps }, (_, i) => `call echo_tool {"n":${i}}`).join('\nthen\n'),
    tools: [{ name: 'echo_tool', url: tools.toolUrl('echo_tool'), inputSchema: { type: 'object' } }],
  });

  it('charges every model call to the account and shows it in GET /api/usage', async () => {
    const bob = await createAccount(stack.api.deps.db);
    expect(await usage(bob)).to.deep.include({ consumed: { tokens: 0, spendMicros: 0 }, limits: null, limitReached: null, period: 'month' });
    const runId = await startRunOk(stack.api.app, bob.key, { prompt: 'one two three four', model: 'openai/gpt-4o-mini' });
    const run = await waitForRunStatus(stack.api.deps, runId, ['completed']);
    const runUsage = run.usage as { inputTokens: number; outputTokens: number };
    const shown = await usage(bob);
    expect(shown.consumed.tokens).to.equal(runUsage.inputTokens + runUsage.outputTokens);
    expect(shown.consumed.spendMicros, 'a priced model costs').to.equal(Number(run.costMicros));
    expect(shown.consumed.spendMicros).to.be.greaterThan(0);
  });

  it('refuses a new run, a chat message and tool results once a limit is reached: 429 with the limit, the consumption, the reset and Retry-After', async () => {
    const bob = await createAccount(stack.api.deps.db);
    const parked = await startParkedRun(stack.api.app, stack.api.deps, bob.key);
    const used = await consumedTokens(bob);
    expect(used).to.be.greaterThan(0);
    const body = await setLimits(bob, { period: 'day', tokens: used });
    expect(body.limits).to.deep.equal({ tokens: used, spendMicros: null });
    expect(body.limitReached).to.include({ kind: 'tokens', limit: used, consumed: used, period: 'day' });

    const refused = await postRun(stack.api.app, bob.key, { prompt: 'more please' });
    expect(refused.status).to.equal(429);
    expect(refused.body.error).to.equal('usage_limit_exceeded');
    const tomorrow = new Date();
    tomorrow.setUTCHours(24, 0, 0, 0);
    expect(refused.body.details).to.deep.equal({ kind: 'tokens', limit: used, consumed: used, resetsAt: tomorrow.toISOString().replace('.000Z', 'Z') });
    const retryAfter = Number(refused.headers['retry-after']);
    expect(retryAfter).to.be.within(1, 86_400);
    expect(Math.abs(retryAfter - (tomorrow.getTime() - Date.now()) / 1000)).to.be.below(60);

    const message = await request(stack.api.app).post(`/api/chats/${parked.chatId}/messages`).set(bob.auth).send({ prompt: 'and this?' });
    expect(message.status).to.equal(429);
    expect(message.body.error).to.equal('usage_limit_exceeded');
    const pending = (await request(stack.api.app).get(`/api/chat/runs/${parked.runId}`).set(bob.auth)).body.pendingToolCalls as { toolCallId: string }[];
    const results = await request(stack.api.app)
      .post(`/api/chat/runs/${parked.runId}/tool-results`)
      .set(bob.auth)
      .send({ results: pending.map((call) => ({ toolCallId: call.toolCallId, output: 'ok' })) });
    expect(results.status).to.equal(429);
    expect(results.body.error).to.equal('usage_limit_exceeded');
    expect((await stack.api.deps.db.run.findUniqueOrThrow({ where: { id: parked.runId } })).status, 'still waiting').to.equal('requires_action');

    // Raised: everything goes again.
    await setLimits(bob, { period: 'day', tokens: used * 100 });
    await answerPendingCalls(stack.api.app, bob.key, parked.runId);
    await waitForRunStatus(stack.api.deps, parked.runId, ['completed']);
    expect((await postRun(stack.api.app, bob.key, { prompt: 'more please' })).status).to.equal(202);
  });

  it('ends a run whose next model call no longer fits the limit failed with usage_limit_exceeded, keeping what it did', async () => {
    const bob = await createAccount(stack.api.deps.db);
    const parked = await startParkedRun(stack.api.app, stack.api.deps, bob.key);
    // What is left once its first call is charged: less than any next call's input.
    await setLimits(bob, { period: 'week', tokens: (await consumedTokens(bob)) + 1 });
    await answerPendingCalls(stack.api.app, bob.key, parked.runId);
    const run = await waitForRunStatus(stack.api.deps, parked.runId, ['failed', 'completed']);
    expect(run.status).to.equal('failed');
    expect(run.errorCode).to.equal('usage_limit_exceeded');
    expect(run.errorRetryable).to.equal(false);
    expect(run.finishReason).to.equal('error');
    // The first model call went through and its call was answered; the second was never made.
    const messages = (await request(stack.api.app).get(`/api/chats/${run.chatId}/messages`).set(bob.auth)).body.messages as {
      role: string;
      parts: { type: string; state?: string }[];
    }[];
    const answer = messages.find((message) => message.role === 'assistant')!;
    expect(answer.parts.filter((part) => part.type === 'tool-hold').map((part) => part.state)).to.deep.equal(['output-available']);
    const view = (await request(stack.api.app).get(`/api/chat/runs/${parked.runId}`).set(bob.auth)).body;
    expect(view.error).to.include({ code: 'usage_limit_exceeded', retryable: false });
    expect(await consumedTokens(bob)).to.equal(
      (run.usage as { inputTokens: number; outputTokens: number }).inputTokens + (run.usage as { outputTokens: number }).outputTokens,
    );
  });

  it('keeps a queued message waiting while the limit holds, and promotes it once the period rolls over', async () => {
    const bob = await createAccount(stack.api.deps.db);
    const parked = await startParkedRun(stack.api.app, stack.api.deps, bob.key);
    const queued = await request(stack.api.app).post(`/api/chats/${parked.chatId}/messages`).set(bob.auth).send({ prompt: 'after the reset' });
    expect(queued.status).to.equal(202);
    expect(queued.body.queued).to.equal(true);
    // Reached: today's usage is at the limit (written by the test, as the period's calls would).
    await setLimits(bob, { period: 'day', tokens: 100_000 });
    await stack.api.deps.db.$executeRaw`
      INSERT INTO account_usage (account_id, day, slot, tokens, spend_micros) VALUES (${bob.accountId}::uuid, (now() AT TIME ZONE 'UTC')::date, 15, 100000, 0)
      ON CONFLICT (account_id, day, slot) DO UPDATE SET tokens = account_usage.tokens + 100000`;
    expect((await request(stack.api.app).post(`/api/chat/runs/${parked.runId}/cancel`).set(bob.auth)).status).to.equal(202);
    await waitForRunStatus(stack.api.deps, parked.runId, ['cancelled']);
    const sweepDeps = sweepDepsFor(stack.api);
    expect((await sweepStaleRuns(sweepDeps)).promoted, 'held while the limit is reached').to.equal(0);
    expect(await stack.api.deps.db.queuedMessage.count({ where: { chatId: parked.chatId } }), 'waiting, not dropped').to.equal(1);

    // The period boundary, set by the test: what was used now lies in yesterday.
    await stack.api.deps.db.$executeRaw`UPDATE account_usage SET day = day - 1 WHERE account_id = ${bob.accountId}::uuid`;
    expect((await usage(bob)).limitReached).to.equal(null);
    await sweepStaleRuns(sweepDeps);
    const next = await waitFor(() => stack.api.deps.db.run.findFirst({ where: { chatId: parked.chatId, queuedMessageId: queued.body.queuedMessageId } }), {
      what: 'the queued message to become a run',
    });
    await waitForRunStatus(stack.api.deps, next.id, ['completed']);
  });

  it('promoting the queued message of an idle chat held by a limit starts its run and lets it answer (never interrupts it)', async () => {
    const bob = await createAccount(stack.api.deps.db);
    const parked = await startParkedRun(stack.api.app, stack.api.deps, bob.key);
    const queued = await request(stack.api.app).post(`/api/chats/${parked.chatId}/messages`).set(bob.auth).send({ prompt: 'answer me' });
    expect(queued.body.queued).to.equal(true);
    // Reached: today's usage is at the limit (written by the test, as the period's calls would).
    await setLimits(bob, { period: 'day', tokens: 100_000 });
    await stack.api.deps.db.$executeRaw`
      INSERT INTO account_usage (account_id, day, slot, tokens, spend_micros) VALUES (${bob.accountId}::uuid, (now() AT TIME ZONE 'UTC')::date, 15, 100000, 0)
      ON CONFLICT (account_id, day, slot) DO UPDATE SET tokens = account_usage.tokens + 100000`;
    expect((await request(stack.api.app).post(`/api/chat/runs/${parked.runId}/cancel`).set(bob.auth)).status).to.equal(202);
    await waitForRunStatus(stack.api.deps, parked.runId, ['cancelled']);
    expect(await stack.api.deps.db.queuedMessage.count({ where: { chatId: parked.chatId } }), 'held by the limit').to.equal(1);
    expect((await request(stack.api.app).delete(`/api/admin/accounts/${bob.accountId}/limits`).set(admin)).status).to.equal(200);
    const promoted = await request(stack.api.app).post(`/api/chats/${parked.chatId}/queued-messages/${queued.body.queuedMessageId}/promote`).set(bob.auth);
    expect(promoted.status).to.equal(202);
    const next = await waitFor(() => stack.api.deps.db.run.findFirst({ where: { chatId: parked.chatId, queuedMessageId: queued.body.queuedMessageId } }), {
      what: 'the promoted message’s run',
    });
    const ended = await waitForRunStatus(stack.api.deps, next.id, ['completed', 'cancelled', 'failed']);
    expect(ended.status, 'the message gets its answer').to.equal('completed');
  });

  it('charges a model call cut short — cancel (OpenAI, Anthropic), a chat interrupt (local/echo) — what it used, marked estimated', async () => {
    const slow = await startStack({ LOCAL_MODEL_DELAY_MS: '100' });
    try {
      const base = await slow.api.url();
      const long = Array.from({ length: 200 }, (_, i) => `word${i}`).join(' ');
      const cutShort = async (model: string, stop: (runId: string, chatId: string, key: string) => Promise<unknown>) => {
        const bob = await createAccount(slow.api.deps.db);
        const runId = await startRunOk(slow.api.app, bob.key, { prompt: `[[slow:150]] ${long}`, model });
        await readSse(`${base}/api/chat/runs/${runId}/stream`, bob.auth, { until: (e) => e.data.includes('text-delta') });
        const { chatId } = (await slow.api.deps.db.run.findUnique({ where: { id: runId } }))!;
        await stop(runId, chatId, bob.key);
        const run = await waitForRunStatus(slow.api.deps, runId, ['cancelled']);
        const consumed = (await request(slow.api.app).get('/api/usage').set(bob.auth)).body.consumed.tokens as number;
        return { run, consumed, usage: run.usage as { inputTokens: number; outputTokens: number; estimated?: boolean } };
      };
      const cancel = (runId: string, _chatId: string, key: string) =>
        request(slow.api.app)
          .post(`/api/chat/runs/${runId}/cancel`)
          .set({ authorization: `Bearer ${key}` });
      const interrupt = (_runId: string, chatId: string, key: string) =>
        request(slow.api.app)
          .post(`/api/chats/${chatId}/interrupt`)
          .set({ authorization: `Bearer ${key}` });
      for (const [model, stop] of [
        ['openai/gpt-4o-mini', cancel],
        ['anthropic/claude-haiku-4-5', cancel],
        ['local/echo', interrupt],
      ] as const) {
        const { consumed, usage } = await cutShort(model, stop);
        expect(usage.estimated, model).to.equal(true);
        expect(usage.inputTokens, `${model}: the request's ~200 words`).to.be.at.least(150);
        expect(usage.outputTokens, `${model}: what it streamed`).to.be.at.least(1);
        expect(consumed, `${model}: the account was charged the cut call`).to.equal(usage.inputTokens + usage.outputTokens);
      }
    } finally {
      await slow.close();
    }
  });

  it('keeps 50 concurrent runs within a small token limit: each call reserves its worst case first (SPEC section 21: spend reservations)', async () => {
    // What one run costs without a limit, call by call.
    const carol = await createAccount(stack.api.deps.db);
    const probeId = await startRunOk(stack.api.app, carol.key, toolSteps(4));
    const probe = await waitForRunStatus(stack.api.deps, probeId, ['completed']);
    const steps = await stack.api.deps.db.runStep.findMany({ where: { runId: probeId } });
    const stepTokens = steps.map(
      (step) => (step.usage as { inputTokens: number; outputTokens: number }).inputTokens + (step.usage as { outputTokens: number }).outputTokens,
    );
    const runTokens = (probe.usage as { inputTokens: number }).inputTokens + (probe.usage as { outputTokens: number }).outputTokens;
    const largestCall = Math.max(...stepTokens, runTokens - stepTokens.reduce((a, b) => a + b, 0));

    const bob = await createAccount(stack.api.deps.db);
    const limit = runTokens * 3;
    await setLimits(bob, { period: 'day', tokens: limit });
    const posted = await Promise.all(Array.from({ length: 50 }, () => postRun(stack.api.app, bob.key, toolSteps(4))));
    expect(posted.map((res) => res.status)).to.deep.equal(Array(50).fill(202));
    const runs = await Promise.all(posted.map((res) => waitForRunStatus(stack.api.deps, res.body.runId, ['completed', 'failed'], 60_000)));

    const consumed = await consumedTokens(bob);
    // local/echo counts fewer tokens than runyard's estimate of a call (about 4 characters a token of
    // the whole request): no call goes over its estimate, so nothing goes over the limit.
    expect(consumed, `consumed ${consumed} of ${limit}`).to.be.at.most(limit);
    expect(consumed, `most of the limit was used (one call is at most ${largestCall} tokens)`).to.be.above(limit / 2);
    expect(await stack.api.deps.db.spendReservation.count({ where: { accountId: bob.accountId } }), 'every reservation went back').to.equal(0);
    const failed = runs.filter((run) => run.status === 'failed');
    expect(failed.length).to.be.greaterThan(0);
    expect(new Set(failed.map((run) => run.errorCode))).to.deep.equal(new Set(['usage_limit_exceeded']));
    // Every charge is a run's usage: the account's total is the sum of its runs'.
    const total = runs.reduce((sum, run) => sum + (run.usage as { inputTokens: number }).inputTokens + (run.usage as { outputTokens: number }).outputTokens, 0);
    expect(consumed).to.equal(total);
  });

  it('applies DEFAULT_LIMITS to accounts without their own limits, not to those with them (SPEC section 21)', async () => {
    const defaults = await startStack({ DEFAULT_LIMITS: 'tokens=300/day,spendUsd=5/day' });
    try {
      // Each process writes it at its start, without waiting for it (a process starts while Postgres is away).
      await waitFor(() => defaults.api.deps.db.deploymentLimits.findFirst({ where: { tokens: 300n } }), { what: 'DEFAULT_LIMITS written' });
      const plain = await createAccount(defaults.api.deps.db);
      const own = await createAccount(defaults.api.deps.db);
      await setAccountLimits(defaults.api.deps.db, own.accountId, { period: 'month', tokens: 1_000_000, spendMicros: null });
      const shown = (await request(defaults.api.app).get('/api/usage').set(plain.auth)).body;
      expect(shown).to.deep.include({ period: 'day', limits: { tokens: 300, spendMicros: 5_000_000 } });
      const unpriced = await postRun(defaults.api.app, plain.key, { prompt: 'x', model: 'openai/my-unpriced-finetune' });
      expect([unpriced.status, unpriced.body.error], 'a spend limit by default: no model is free under it').to.deep.equal([400, 'model_not_priced']);
      for (const account of [plain, own])
        await waitForRunStatus(defaults.api.deps, await startRunOk(defaults.api.app, account.key, { prompt: 'hello' }), ['completed']);
      // Both used the rest of today's default (written by the test, as their calls would).
      for (const account of [plain, own])
        await defaults.api.deps.db.$executeRaw`
          INSERT INTO account_usage (account_id, day, slot, tokens, spend_micros) VALUES (${account.accountId}::uuid, (now() AT TIME ZONE 'UTC')::date, 15, 300, 0)
          ON CONFLICT (account_id, day, slot) DO UPDATE SET tokens = account_usage.tokens + 300`;
      const refused = await postRun(defaults.api.app, plain.key, { prompt: 'more' });
      expect([refused.status, refused.body.error]).to.deep.equal([429, 'usage_limit_exceeded']);
      expect(refused.body.details).to.include({ kind: 'tokens', limit: 300 });
      expect((await postRun(defaults.api.app, own.key, { prompt: 'more' })).status, 'its own limits replace the default').to.equal(202);
    } finally {
      await defaults.close();
      await applyDefaultLimits(stack.api.deps.db, null);
    }
  });

  it('limits spend in micro-dollars on priced models', async () => {
    const bob = await createAccount(stack.api.deps.db);
    await setLimits(bob, { period: 'month', spendMicros: 40 });
    let refused: request.Response | undefined;
    for (let i = 0; i < 30 && !refused; i++) {
      const res = await postRun(stack.api.app, bob.key, { prompt: `a priced answer ${i}`, model: 'openai/gpt-4o-mini' });
      if (res.status === 429) refused = res;
      else await waitForRunStatus(stack.api.deps, res.body.runId, ['completed', 'failed']);
    }
    expect(refused?.body.details).to.include({ kind: 'spendMicros', limit: 40 });
    expect(refused!.body.details.consumed).to.be.greaterThan(0).and.at.most(40);
  });

  it('admin API: limits are validated, cleared with DELETE; settings change and go back to the default; an unknown account is 404', async () => {
    const bob = await createAccount(stack.api.deps.db);
    const bad = await request(stack.api.app).put(`/api/admin/accounts/${bob.accountId}/limits`).set(admin).send({ period: 'year', tokens: 5 });
    expect(bad.status).to.equal(400);
    const none = await request(stack.api.app).put(`/api/admin/accounts/${bob.accountId}/limits`).set(admin).send({ period: 'day' });
    expect(none.status).to.equal(400);
    await setLimits(bob, { period: 'day', tokens: 0 });
    expect((await postRun(stack.api.app, bob.key, { prompt: 'x' })).status).to.equal(429);
    const cleared = await request(stack.api.app).delete(`/api/admin/accounts/${bob.accountId}/limits`).set(admin);
    expect(cleared.body.limits).to.equal(null);
    expect((await postRun(stack.api.app, bob.key, { prompt: 'x' })).status).to.equal(202);
    const settings = await request(stack.api.app)
      .patch(`/api/admin/accounts/${bob.accountId}/settings`)
      .set(admin)
      .send({ compactionThresholdPercent: 40, retentionDays: 9 });
    expect(settings.body).to.include({ compactionThresholdPercent: 40, compactionThresholdIsDefault: false, retentionDays: 9, retentionDaysIsDefault: false });
    const reset = await request(stack.api.app).patch(`/api/admin/accounts/${bob.accountId}/settings`).set(admin).send({ compactionThresholdPercent: null });
    expect(reset.body).to.include({ compactionThresholdPercent: 70, compactionThresholdIsDefault: true, retentionDays: 9 });
    expect(
      (await request(stack.api.app).patch(`/api/admin/accounts/${bob.accountId}/settings`).set(admin).send({ compactionThresholdPercent: 0 })).status,
    ).to.equal(400);
    const unknown = await request(stack.api.app).get('/api/admin/accounts/no-such-account/usage').set(admin);
    expect(unknown.status).to.equal(404);
    expect(unknown.body.error).to.equal('account_not_found');
    const parked = await startParkedRun(stack.api.app, stack.api.deps, bob.key);
    const runKey = await createEphemeralKey(stack.api.deps.db, bob.accountId, parked.runId);
    expect(
      (
        await request(stack.api.app)
          .get(`/api/chat/runs/${parked.runId}`)
          .set({ authorization: `Bearer ${runKey}` })
      ).status,
    ).to.equal(200);
    const forRunKey = await request(stack.api.app)
      .get('/api/usage')
      .set({ authorization: `Bearer ${runKey}` });
    expect(forRunKey.status, 'a run key reads its own run only').to.equal(403);
  });
});
