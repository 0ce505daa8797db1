import { expect } from 'chai';
import request from 'supertest';
import { startFakeProviders, type FakeProviders } from '../support/fakeProviders.js';
import { createAccount } from '../support/factories.js';
import { spawnWorker, startApi, waitFor, workerReady, type ApiHarness, type WorkerProcess } from '../support/harness.js';
import { startRunOk, waitForRunStatus } from '../support/runs.js';
import { expectNothingLost } from './support.js';

const ADMIN = 'admin-token-0123456789abcdef';
const WINDOW_MS = 1_500;

/**
 * Runs waiting for capacity (SPEC section 15) — in the fair scheduler at their account's maxRunning,
 * or handed back until the model's fleet-wide rate limit has room — survive a worker killed with
 * kill -9: nothing lost, nothing run twice, and the limit still holds across what the killed
 * worker had reserved.
 */
describe('fault: kill -9 of a worker while runs wait for capacity', function () {
  this.timeout(180_000);
  let fake: FakeProviders;
  let api: ApiHarness;
  const workers: WorkerProcess[] = [];

  before(async () => {
    fake = await startFakeProviders();
    const env = {
      OPENAI_API_KEY: 'sk-fake-openai',
      OPENAI_BASE_URL: fake.openaiBaseUrl,
      MODEL_RATE_LIMITS: 'openai/*=rpm:4',
      MODEL_RATE_LIMIT_WINDOW_MS: String(WINDOW_MS),
      RUN_LOCK_MS: '2000',
      RUN_STALE_AFTER_MS: '4000',
      RUN_SWEEP_EVERY_MS: '1000',
      RUN_MAX_STALLS: '5',
      ADMIN_TOKEN: ADMIN,
      ACCOUNT_MAX_ACTIVE_RUNS: '1000',
    };
    api = startApi(env);
    for (let i = 0; i < 2; i++) workers.push(spawnWorker(api.prefix, { ...env, WORKER_CONCURRENCY: '4' }));
    await Promise.all(workers.map((worker) => workerReady(worker)));
  });
  after(async () => {
    for (const worker of workers) worker.child.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.stopped));
    await api.close();
    await fake.close();
  });

  it('loses nothing and runs nothing twice; the model’s limit holds throughout', async () => {
    const account = await createAccount(api.deps.db);
    const settings = await request(api.app)
      .patch(`/api/admin/accounts/${account.accountId}/settings`)
      .set({ authorization: `Bearer ${ADMIN}` })
      .send({ maxRunning: 3 });
    expect(settings.status).to.equal(200);
    const runIds = await Promise.all(
      Array.from({ length: 16 }, (_, i) => startRunOk(api.app, account.key, { prompt: `waiting ${i} [[slow:40]] a b c d e`, model: 'openai/gpt-4o-mini' })),
    );
    await waitFor(() => fake.requests.length >= 5, { what: 'the first window to fill', timeoutMs: 30_000 });
    workers[0]!.child.kill('SIGKILL');
    await workers[0]!.stopped;
    for (const runId of runIds) await waitForRunStatus(api.deps, runId, ['completed'], 90_000);
    await expectNothingLost(api.deps, runIds);
    const times = fake.requests.map((r) => r.at);
    for (const at of times) expect(times.filter((t) => t >= at && t < at + WINDOW_MS - 100).length, 'requests in one window').to.be.at.most(4);
  });
});
