import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { expect } from 'chai';
import request from 'supertest';
import { startApi, spawnWorker, waitFor, workerReady, type ApiHarness, type WorkerProcess } from '../support/harness.js';
import { createAccount } from '../support/factories.js';
import { startRunOk } from '../support/runs.js';
import { startTcpProxy, type TcpProxy } from '../support/tcpProxy.js';
import { TEST_DATABASE_URL } from '../support/testConfig.js';
import { expectEveryRunSettled, postFor } from './support.js';

/** The test database's URL with the port of a TCP proxy in front of it (which the test can cut). */
const throughProxy = (proxy: TcpProxy) => {
  const url = new URL(TEST_DATABASE_URL);
  url.port = String(proxy.port);
  return url.toString();
};

const env = {
  RUN_LOCK_MS: '2000',
  LOCAL_MODEL_DELAY_MS: '20',
  RUN_STALE_AFTER_MS: '3000',
  RUN_SWEEP_EVERY_MS: '1000',
  RUN_MAX_ATTEMPTS: '5',
  ACCOUNT_MAX_ACTIVE_RUNS: '1000',
};

/** A port that was free a moment ago (asked of the OS with port 0), for a server the test starts itself. */
const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });

describe('fault: Redis restarted under load', function () {
  this.timeout(180_000);
  let port = 0;
  const startRedis = () => {
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    return child;
  };
  let redis: ChildProcess;
  let api: ApiHarness;
  let worker: WorkerProcess;

  before(async () => {
    port = await freePort(); // port 0: the OS picks one no other run holds
    redis = startRedis();
    await waitFor(() => {
      try {
        return execFileSync('redis-cli', ['-p', String(port), 'ping'])
          .toString()
          .includes('PONG');
      } catch {
        return false;
      }
    });
    api = startApi({ ...env, REDIS_URL: `redis://127.0.0.1:${port}` });
    worker = spawnWorker(api.prefix, { ...env, REDIS_URL: `redis://127.0.0.1:${port}` });
    await workerReady(worker);
  });
  after(async () => {
    worker?.child.kill('SIGKILL');
    await api?.close();
    redis?.kill('SIGKILL');
  });

  it('answers 503 during the outage, workers reconnect, and every run that got a 202 ends terminal', async () => {
    const alice = await createAccount(api.deps.db);
    const accepted: string[] = [];
    const statuses: number[] = [];
    await postFor(api, alice.key, 2_000, accepted, statuses);
    redis.kill('SIGKILL'); // Redis keeps nothing on disk here: every queued job is lost with it
    await postFor(api, alice.key, 2_000, accepted, statuses);
    redis = startRedis();
    await waitFor(async () => (await request(api.app).get('/readyz')).status === 200, { timeoutMs: 20_000, what: 'the api to reconnect' });
    const afterRecovery = accepted.length;
    await postFor(api, alice.key, 2_000, accepted, statuses);
    expect(statuses).to.include(503);
    expect(statuses.filter((s) => s === 202).length).to.be.greaterThan(10);
    expect(accepted.length, 'runs accepted again after the recovery').to.be.greaterThan(afterRecovery);
    await expectEveryRunSettled(api.deps, accepted);
    expect(await api.deps.db.run.count({ where: { id: { in: accepted.slice(afterRecovery) }, status: 'completed' } }), 'and they complete').to.equal(
      accepted.length - afterRecovery,
    );
  });
});

describe('fault: Postgres unreachable for a while', function () {
  this.timeout(180_000);
  let proxy: TcpProxy;
  let api: ApiHarness;
  let worker: WorkerProcess;

  before(async () => {
    proxy = await startTcpProxy(5432);
    const url = throughProxy(proxy);
    api = startApi({ ...env, DATABASE_URL: url });
    worker = spawnWorker(api.prefix, { ...env, DATABASE_URL: url });
    await workerReady(worker);
  });
  after(async () => {
    worker?.child.kill('SIGKILL');
    await api?.close();
    await proxy?.close();
  });

  it('answers 503 while the database is away, and every run that got a 202 ends terminal', async () => {
    const alice = await createAccount(api.deps.db);
    const accepted: string[] = [];
    const statuses: number[] = [];
    await postFor(api, alice.key, 2_000, accepted, statuses);
    proxy.cut();
    await postFor(api, alice.key, 3_000, accepted, statuses);
    proxy.restore();
    const afterRecovery = accepted.length;
    await postFor(api, alice.key, 2_000, accepted, statuses);
    expect(statuses).to.include(503);
    expect(accepted.length, 'runs accepted again after the recovery').to.be.greaterThan(afterRecovery);
    await expectEveryRunSettled(api.deps, accepted);
    expect(await api.deps.db.run.count({ where: { id: { in: accepted.slice(afterRecovery) }, status: 'completed' } }), 'and they complete').to.equal(
      accepted.length - afterRecovery,
    );
  });
});

describe('fault: a worker started while Postgres is unreachable', function () {
  this.timeout(180_000);
  let proxy: TcpProxy;
  let api: ApiHarness;
  let worker: WorkerProcess | undefined;

  before(async () => {
    proxy = await startTcpProxy(5432);
    const url = throughProxy(proxy);
    api = startApi({ ...env, DATABASE_URL: url, RUN_MAX_ATTEMPTS: '3' });
  });
  after(async () => {
    worker?.child.kill('SIGKILL');
    await api?.close();
    await proxy?.close();
  });

  it('keeps the queued runs: claims that fail for want of Postgres spend no attempt, and all complete once it is back (15 s outage)', async () => {
    const alice = await createAccount(api.deps.db);
    const runIds: string[] = [];
    for (let i = 0; i < 5; i++) runIds.push(await startRunOk(api.app, alice.key, { prompt: `waiting ${i}` }));
    proxy.cut();
    const url = throughProxy(proxy);
    worker = spawnWorker(api.prefix, { ...env, DATABASE_URL: url, RUN_MAX_ATTEMPTS: '3' });
    await workerReady(worker);
    await new Promise((resolve) => setTimeout(resolve, 15_000)); // the outage is the subject: it lasts 15 s
    proxy.restore();
    await waitFor(async () => (await api.deps.db.run.count({ where: { id: { in: runIds }, status: 'completed' } })) === 5, {
      what: 'all 5 runs to complete',
      timeoutMs: 60_000,
    });
    const runs = await api.deps.db.run.findMany({ where: { id: { in: runIds } } });
    expect(runs.map((run) => run.attempt)).to.deep.equal([1, 1, 1, 1, 1]);
    // And the api takes new runs again.
    const after = await startRunOk(api.app, alice.key, { prompt: 'after the outage' });
    await waitFor(async () => (await api.deps.db.run.findUnique({ where: { id: after } }))?.status === 'completed', {
      what: 'a run after recovery',
      timeoutMs: 30_000,
    });
  });
});

describe('fault: Postgres lost by a worker in the middle of its runs', function () {
  this.timeout(180_000);
  let proxy: TcpProxy;
  let api: ApiHarness;
  let worker: WorkerProcess;

  before(async () => {
    proxy = await startTcpProxy(5432);
    const url = throughProxy(proxy);
    // The api reads and writes Postgres directly; only the worker's connections go through the proxy.
    api = startApi({ ...env, RUN_MAX_ATTEMPTS: '3' });
    worker = spawnWorker(api.prefix, { ...env, DATABASE_URL: url, RUN_MAX_ATTEMPTS: '3', LOCAL_MODEL_DELAY_MS: '150' });
    await workerReady(worker);
  });
  after(async () => {
    worker?.child.kill('SIGKILL');
    await api?.close();
    await proxy?.close();
  });

  it('keeps the runs it holds: they finish once Postgres is back (15 s outage), on their first attempt, with one answer', async () => {
    const alice = await createAccount(api.deps.db);
    const words = Array.from({ length: 30 }, (_, i) => `w${i}`).join(' ');
    const runIds = await Promise.all(Array.from({ length: 5 }, (_, i) => startRunOk(api.app, alice.key, { prompt: `${i} ${words}` })));
    await waitFor(async () => (await api.deps.db.run.count({ where: { id: { in: runIds }, status: 'running' } })) === 5, {
      what: 'all 5 runs to be running',
      timeoutMs: 30_000,
    });
    proxy.cut();
    await new Promise((resolve) => setTimeout(resolve, 15_000)); // the outage is the subject: it lasts 15 s
    expect(await api.deps.db.run.count({ where: { id: { in: runIds }, status: 'completed' } }), 'nothing could finish meanwhile').to.equal(0);
    proxy.restore();
    await waitFor(async () => (await api.deps.db.run.count({ where: { id: { in: runIds }, status: 'completed' } })) === 5, {
      what: 'all 5 runs to complete',
      timeoutMs: 60_000,
    });
    await expectEveryRunSettled(api.deps, runIds);
    const runs = await api.deps.db.run.findMany({ where: { id: { in: runIds } } });
    expect(runs.map((run) => run.attempt)).to.deep.equal([1, 1, 1, 1, 1]);
  });
});
