import { startApi, spawnWorker, workerReady, type ApiHarness, type WorkerProcess } from '../support/harness.js';
import { createAccount } from '../support/factories.js';
import { startRunOk } from '../support/runs.js';
import { expectEveryRunSettled } from './support.js';

const words = (n: number) => Array.from({ length: n }, (_, i) => `w${i}`).join(' ');

describe('fault: workers killed with kill -9 under load', function () {
  this.timeout(240_000);
  let api: ApiHarness;
  const workers: WorkerProcess[] = [];
  const env = {
    RUN_LOCK_MS: '2000',
    LOCAL_MODEL_DELAY_MS: '40',
    WORKER_CONCURRENCY: '8',
    RUN_STALE_AFTER_MS: '4000',
    RUN_SWEEP_EVERY_MS: '1000',
    RUN_MAX_STALLS: '5',
    RUN_MAX_ATTEMPTS: '5',
  };

  before(() => {
    api = startApi({ ACCOUNT_MAX_ACTIVE_RUNS: '1000' });
  });
  after(async () => {
    for (const worker of workers) worker.child.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.stopped));
    await api.close();
  });

  it('3 workers, 100 runs, a random worker killed every 2 s and restarted: nothing is lost', async () => {
    for (let i = 0; i < 3; i++) workers.push(spawnWorker(api.prefix, env));
    await Promise.all(workers.map((w) => workerReady(w)));
    const alice = await createAccount(api.deps.db);
    const runIds = await Promise.all(Array.from({ length: 100 }, (_, i) => startRunOk(api.app, alice.key, { prompt: words(20 + (i % 30)) })));
    let kills = 0;
    const chaosUntil = Date.now() + 16_000;
    while (Date.now() < chaosUntil) {
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      const index = Math.floor(Math.random() * workers.length);
      workers[index]!.child.kill('SIGKILL');
      await workers[index]!.stopped;
      kills++;
      workers[index] = spawnWorker(api.prefix, env);
    }
    await Promise.all(workers.map((w) => workerReady(w)));
    await expectEveryRunSettled(api.deps, runIds, 150_000);
    console.log(`      (${kills} kills; ${await api.deps.db.run.count({ where: { id: { in: runIds }, status: 'completed' } })} of 100 completed)`);
  });
});
