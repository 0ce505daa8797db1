import { expect } from 'chai';
import request from 'supertest';
import { startFakeProviders, type FakeProviders, type RecordedRequest } from '../support/fakeProviders.js';
import { createAccount, type TestAccount } from '../support/factories.js';
import { spawnWorker, startApi, waitFor, workerReady, type ApiHarness, type WorkerProcess } from '../support/harness.js';
import { startRunOk, waitForRunStatus } from '../support/runs.js';
import { expectNothingLost } from './support.js';

const words = (tag: string, n: number) => Array.from({ length: n }, (_, i) => `${tag}${i}`).join(' ');
const isCompactionOf = (tag: string) => (r: RecordedRequest) =>
  JSON.stringify(r.body).includes('You compact conversations') && JSON.stringify(r.body).includes(tag);

/**
 * A compaction is a durable step (SPEC section 13): a worker killed with kill -9 while the compaction
 * call is in flight, or right after the compaction was persisted, leaves one compaction in the end
 * and a run that completes once.
 */
describe('fault: kill -9 around a compaction', function () {
  this.timeout(180_000);
  let fake: FakeProviders;
  let api: ApiHarness;
  let bob: TestAccount;
  const workers: WorkerProcess[] = [];
  let env: Record<string, string>;
  const model = 'openai/gpt-4o-mini';

  before(async () => {
    fake = await startFakeProviders();
    env = {
      OPENAI_API_KEY: 'sk-fake-openai',
      OPENAI_BASE_URL: fake.openaiBaseUrl,
      MODEL_CONTEXT_TOKENS: 'openai/*=150',
      RUN_LOCK_MS: '2000',
      RUN_STALE_AFTER_MS: '4000',
      RUN_SWEEP_EVERY_MS: '1000',
      RUN_MAX_STALLS: '5',
      RUN_MAX_ATTEMPTS: '5',
    };
    api = startApi(env);
    bob = await createAccount(api.deps.db);
    workers.push(spawnWorker(api.prefix, env));
    await workerReady(workers[0]!);
  });
  after(async () => {
    for (const worker of workers) worker.child.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.stopped));
    await api.close();
    await fake.close();
  });

  /** A chat whose second turn reached the threshold: its next run compacts first. */
  const chatDueForCompaction = async (tag: string) => {
    const first = await waitForRunStatus(api.deps, await startRunOk(api.app, bob.key, { prompt: words(tag, 40), model }), ['completed'], 30_000);
    const second = await request(api.app)
      .post(`/api/chats/${first.chatId}/messages`)
      .set(bob.auth)
      .send({ prompt: words(`${tag}b`, 40) });
    await waitForRunStatus(api.deps, second.body.runId as string, ['completed'], 30_000);
    return first.chatId;
  };
  const killAndReplace = async () => {
    const victim = workers.at(-1)!;
    victim.child.kill('SIGKILL');
    await victim.stopped;
    const next = spawnWorker(api.prefix, env);
    workers.push(next);
    await workerReady(next);
  };
  const expectOneCompactionAndOneAnswer = async (chatId: string, runId: string) => {
    const run = await waitForRunStatus(api.deps, runId, ['completed', 'failed'], 60_000);
    expect(run.status).to.equal('completed');
    expect(run.attempt, 'the killed attempt and the one that finished').to.be.at.least(2);
    expect(await api.deps.db.chatCompaction.count({ where: { chatId } })).to.equal(1);
    const answers = await api.deps.db.message.findMany({ where: { runId, role: 'assistant' } });
    expect(answers).to.have.length(1);
    const parts = answers[0]!.parts as { type: string }[];
    expect(
      parts.filter((part) => part.type === 'data-compaction'),
      'the compaction shown once',
    ).to.have.length(1);
    await waitFor(async () => (await api.deps.db.cleanupRecord.count({ where: { runId } })) === 1, { what: 'the cleanup' });
    await expectNothingLost(api.deps, [runId]);
  };

  it('killed during the compaction call: it is made again once, and the run completes once', async () => {
    const chatId = await chatDueForCompaction('during');
    const held = fake.hold(isCompactionOf('during0'));
    const third = await request(api.app).post(`/api/chats/${chatId}/messages`).set(bob.auth).send({ prompt: 'go on' });
    await held.arrived;
    await killAndReplace();
    held.release();
    await expectOneCompactionAndOneAnswer(chatId, third.body.runId as string);
    expect(fake.requests.filter(isCompactionOf('during0')), 'the interrupted call, then the one that counted').to.have.length(2);
  });

  it('killed right after the compaction was persisted: it is not made again, and the run completes once', async () => {
    const chatId = await chatDueForCompaction('after');
    const nextCall = fake.hold(
      (r) =>
        !isCompactionOf('after')(r) &&
        JSON.stringify(r.body).includes('Summary of the earlier conversation') &&
        JSON.stringify(r.body).includes('after-marker'),
    );
    const third = await request(api.app).post(`/api/chats/${chatId}/messages`).set(bob.auth).send({ prompt: 'after-marker go on' });
    await nextCall.arrived;
    expect(await api.deps.db.chatCompaction.count({ where: { chatId } }), 'persisted before the next call').to.equal(1);
    await killAndReplace();
    nextCall.release();
    await expectOneCompactionAndOneAnswer(chatId, third.body.runId as string);
    expect(fake.requests.filter(isCompactionOf('after0')), 'one compaction call').to.have.length(1);
  });
});
