import { expect } from 'chai';
import request from 'supertest';
import { createAccount, type TestAccount } from '../support/factories.js';
import { startApi, startWorker, waitFor, type ApiHarness } from '../support/harness.js';
import { mostAtOnce, startOrder, startRunOk, waitForRunStatus } from '../support/runs.js';
import { startStack, type Stack } from '../support/stack.js';
import type { FleetMember } from '../../worker/fleet/fleetMember.js';

const ADMIN = 'admin-token-0123456789abcdef';
const admin = { authorization: `Bearer ${ADMIN}` };
const words = (n: number, tag: string) => Array.from({ length: n }, (_, i) => `${tag}${i}`).join(' ');

async function allEnd(api: ApiHarness, runIds: string[]) {
  for (const runId of runIds) await waitForRunStatus(api.deps, runId, ['completed'], 60_000);
}

/** Fair share, maxRunning and priorities (SPEC section 15). */
describe('flow control: a fleet shared fairly between accounts', function () {
  this.timeout(120_000);
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  const api = (env: Record<string, string>) => {
    const harness = startApi({ ADMIN_TOKEN: ADMIN, ACCOUNT_MAX_ACTIVE_RUNS: '1000', LOCAL_MODEL_DELAY_MS: '20', ...env });
    cleanups.push(() => harness.close());
    return harness;
  };
  const worker = async (harness: ApiHarness, env: Record<string, string>): Promise<FleetMember> => {
    const member = await startWorker(harness.prefix, { LOCAL_MODEL_DELAY_MS: '20', ...env });
    cleanups.push(() => member.close(1_000));
    return member;
  };
  const settings = async (harness: ApiHarness, account: TestAccount, body: Record<string, unknown>) => {
    const res = await request(harness.app).patch(`/api/admin/accounts/${account.accountId}/settings`).set(admin).send(body);
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    return res.body;
  };

  /** Account A floods (60 runs), then B posts one: how many of A's runs started after B's was posted and before it started. */
  async function noisyNeighbour(fair: boolean) {
    const env = { FAIR_SCHEDULING: String(fair), FLOW_RELEASE_AHEAD: '2' };
    const harness = api(env);
    await worker(harness, { ...env, WORKER_CONCURRENCY: '2' });
    const a = await createAccount(harness.deps.db);
    const b = await createAccount(harness.deps.db);
    const flood: string[] = [];
    for (let i = 0; i < 60; i += 20)
      flood.push(...(await Promise.all(Array.from({ length: 20 }, (_, j) => startRunOk(harness.app, a.key, { prompt: words(5, `a${i + j}-`) })))));
    const bRun = await startRunOk(harness.app, b.key, { prompt: 'b needs one run' });
    await allEnd(harness, [...flood, bRun]);
    const order = await startOrder(harness.deps.db, [...flood, bRun]);
    const posted = order.find((run) => run.id === bRun)!;
    const aAfterPost = order.filter((run) => run.accountId === a.accountId && run.startedAt! > posted.createdAt);
    const aAhead = aAfterPost.filter((run) => run.startedAt! < posted.startedAt!);
    return { backlog: aAfterPost.length, ahead: aAhead.length };
  }

  it('starts another account’s run behind a few of a flooding account’s runs, not its whole backlog (first in, first out would)', async () => {
    const fair = await noisyNeighbour(true);
    expect(fair.backlog, 'A still had a backlog when B posted').to.be.at.least(30);
    // At most FLOW_RELEASE_AHEAD (2) released plus the 2 slots freed meanwhile, and a little slack.
    expect(fair.ahead, `A's runs that started before B's (of ${fair.backlog} waiting)`).to.be.at.most(6);
    const fifo = await noisyNeighbour(false);
    expect(fifo.ahead, `without the scheduler, B waits behind A's backlog (${fifo.backlog})`).to.be.at.least(fifo.backlog - 6);
  });

  it('shares a saturated fleet by weight: 1, 1 and 2 get a quarter, a quarter and half of the runs started', async () => {
    const env = { FLOW_RELEASE_AHEAD: '1' };
    const harness = api(env);
    const accounts = [await createAccount(harness.deps.db), await createAccount(harness.deps.db), await createAccount(harness.deps.db)];
    expect(await settings(harness, accounts[2]!, { weight: 2 })).to.include({ weight: 2, maxRunning: null });
    // All three are backlogged before any worker runs: A's runs were even posted first.
    const runIds: string[] = [];
    for (const [n, account] of accounts.entries())
      runIds.push(...(await Promise.all(Array.from({ length: 30 }, (_, i) => startRunOk(harness.app, account.key, { prompt: `w${n} ${i}` })))));
    await worker(harness, { ...env, WORKER_CONCURRENCY: '1' });
    await allEnd(harness, runIds);
    const first = (await startOrder(harness.deps.db, runIds)).slice(0, 40);
    const started = accounts.map((account) => first.filter((run) => run.accountId === account.accountId).length);
    expect(started[0], `runs started of the first 40: ${started}`).to.be.within(8, 12);
    expect(started[1], `runs started of the first 40: ${started}`).to.be.within(8, 12);
    expect(started[2], `runs started of the first 40: ${started}`).to.be.within(18, 22);
  });

  it('keeps an account within its maxRunning across two workers, and lets a second account use the rest of the fleet', async () => {
    const harness = api({});
    const capped = await createAccount(harness.deps.db);
    const other = await createAccount(harness.deps.db);
    expect(await settings(harness, capped, { maxRunning: 2 })).to.include({ maxRunning: 2 });
    await worker(harness, { WORKER_CONCURRENCY: '4', LOCAL_MODEL_DELAY_MS: '30' });
    await worker(harness, { WORKER_CONCURRENCY: '4', LOCAL_MODEL_DELAY_MS: '30' });
    const cappedRuns = await Promise.all(Array.from({ length: 12 }, (_, i) => startRunOk(harness.app, capped.key, { prompt: words(8, `c${i}-`) })));
    const otherRuns = await Promise.all(Array.from({ length: 12 }, (_, i) => startRunOk(harness.app, other.key, { prompt: words(8, `o${i}-`) })));
    await allEnd(harness, [...cappedRuns, ...otherRuns]);
    expect(mostAtOnce(await startOrder(harness.deps.db, cappedRuns)), 'capped account, running at once').to.equal(2);
    expect(mostAtOnce(await startOrder(harness.deps.db, otherRuns)), 'uncapped account, running at once').to.be.above(2);
    const back = await settings(harness, capped, { maxRunning: null, weight: null });
    expect(back).to.include({ maxRunning: null, weight: 1 });
  });

  it('starts an account’s higher-priority runs first (runs and chat messages)', async () => {
    const env = { FLOW_RELEASE_AHEAD: '1' };
    const harness = api(env);
    const account = await createAccount(harness.deps.db);
    const runIds: string[] = [];
    for (const priority of ['low', 'low', 'low', 'normal', 'normal', 'high', 'high'])
      runIds.push(await startRunOk(harness.app, account.key, { prompt: `a ${priority} run`, priority }));
    // A chat's message with a priority starts as a run of that priority.
    const chatId = (await harness.deps.db.run.findUniqueOrThrow({ where: { id: runIds[0]! } })).chatId;
    const bad = await request(harness.app).post('/api/chat/runs').set(account.auth).send({ prompt: 'x', priority: 'urgent' });
    expect([bad.status, bad.body.error]).to.deep.equal([400, 'validation_failed']);
    // Six wait in the scheduler (the first was released to the queue), as /metrics shows.
    const metrics = (await request(harness.app).get('/metrics')).text;
    expect(metrics).to.match(/runyard_flow_runs\{[^}]*state="waiting"[^}]*\} 6\n/);
    expect(metrics).to.match(/runyard_flow_runs\{[^}]*state="released"[^}]*\} 1\n/);
    await worker(harness, { ...env, WORKER_CONCURRENCY: '1' });
    await allEnd(harness, runIds);
    const message = await request(harness.app).post(`/api/chats/${chatId}/messages`).set(account.auth).send({ prompt: 'next', priority: 'high' });
    expect(message.status, JSON.stringify(message.body)).to.equal(202);
    expect((await harness.deps.db.run.findUniqueOrThrow({ where: { id: message.body.runId } })).priority).to.equal('high');
    const order = (await startOrder(harness.deps.db, runIds)).map((run) => run.priority);
    // The first low run was released to the queue at once (FLOW_RELEASE_AHEAD 1), before the others were posted.
    expect(order).to.deep.equal(['low', 'high', 'high', 'normal', 'normal', 'low', 'low']);
  });
});

/** Provider limits shared by the fleet (SPEC section 15), against the fake OpenAI server, with two workers. */
describe('flow control: model rate limits shared by the fleet', function () {
  this.timeout(120_000);
  let stack: Stack | undefined;
  let second: FleetMember | undefined;
  afterEach(async () => {
    await second?.close(1_000);
    await stack?.close();
    second = stack = undefined;
  });

  const WINDOW_MS = 1_500;

  it('never lets the provider see more than the limit in a window, across two workers; the waits hold no worker slot', async () => {
    const env = {
      MODEL_RATE_LIMITS: 'openai/*=rpm:3',
      MODEL_RATE_LIMIT_WINDOW_MS: String(WINDOW_MS),
      ACCOUNT_MAX_ACTIVE_RUNS: '1000',
      WORKER_CONCURRENCY: '4',
    };
    stack = await startStack(env);
    second = await startWorker(stack.api.prefix, { PUBLIC_BASE_URL: await stack.api.url(), ...stack.env });
    const runIds = await Promise.all(
      Array.from({ length: 9 }, (_, i) => startRunOk(stack!.api.app, stack!.alice.key, { prompt: `limited ${i}`, model: 'openai/gpt-4o-mini' })),
    );
    // A local/echo run is not limited: it goes by while the OpenAI runs wait (they hold no slot).
    const free = await startRunOk(stack.api.app, stack.alice.key, { prompt: 'not limited' });
    await waitForRunStatus(stack.api.deps, free, ['completed'], 10_000);
    for (const runId of runIds) await waitForRunStatus(stack.api.deps, runId, ['completed'], 60_000);
    const times = stack.fake.requests.filter((r) => r.provider === 'openai').map((r) => r.at);
    expect(times).to.have.length(9);
    // In any window (less the time a reserved call takes to arrive), at most 3 requests.
    for (const at of times) expect(times.filter((t) => t >= at && t < at + WINDOW_MS - 100).length, 'requests in one window').to.be.at.most(3);
    expect(Math.max(...times) - Math.min(...times), '9 requests at 3 a window need two more windows').to.be.at.least(2 * WINDOW_MS - 200);
    const waited = await stack.api.deps.db.run.findMany({ where: { id: { in: runIds }, attempt: { gt: 1 } } });
    expect(waited.length, 'runs that waited for capacity were handed back and taken again').to.be.above(0);
  });

  it('pauses a model for the whole fleet when the provider answers 429 with Retry-After', async () => {
    stack = await startStack({ RUN_RETRY_BASE_MS: '50' });
    second = await startWorker(stack.api.prefix, { PUBLIC_BASE_URL: await stack.api.url(), ...stack.env });
    const model = 'openai/gpt-4o-mini';
    const limited = await startRunOk(stack.api.app, stack.alice.key, { prompt: '[[fail-once:429:pause-1]] first', model });
    const pauseKey = `${stack.api.prefix}:{ratelimit:${model}}:paused`;
    await waitFor(async () => (await stack!.api.deps.redis.pttl(pauseKey)) > 0, { what: 'the model to be paused fleet-wide' });
    const refused = stack.fake.requests.find((r) => JSON.stringify(r.body).includes('pause-1'))!;
    const others = await Promise.all(Array.from({ length: 4 }, (_, i) => startRunOk(stack!.api.app, stack!.alice.key, { prompt: `after ${i}`, model })));
    for (const runId of [limited, ...others]) await waitForRunStatus(stack.api.deps, runId, ['completed'], 30_000);
    const later = stack.fake.requests.filter((r) => r !== refused && r.provider === 'openai');
    expect(later).to.have.length(5);
    // Retry-After: 1 (s): nobody called the model for that second, whichever worker.
    for (const r of later) expect(r.at - refused.at, 'ms after the 429').to.be.at.least(950);
  });
});
