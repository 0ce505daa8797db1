import { expect } from 'chai';
import request from 'supertest';
import { startApi, type ApiHarness } from '../support/harness.js';
import { createAccount, createEphemeralKey, type TestAccount } from '../support/factories.js';
import { startRunOk } from '../support/runs.js';

describe('reading runs', () => {
  let api: ApiHarness;
  let alice: TestAccount;
  let bob: TestAccount;

  before(async () => {
    api = startApi();
    [alice, bob] = await Promise.all([createAccount(api.deps.db), createAccount(api.deps.db)]);
  });
  after(() => api.close());

  it('answers 400, not 500, for a cursor past the 64-bit range', async () => {
    const res = await request(api.app).get('/api/chat/runs?cursor=9999999999999999999').set(alice.auth);
    expect(res.status).to.equal(400);
    expect(res.body.error).to.equal('validation_failed');
  });

  it('GET /api/chat/runs/{runId} answers the contract’s fields', async () => {
    const runId = await startRunOk(api.app, alice.key, { prompt: 'hi' });
    const res = await request(api.app).get(`/api/chat/runs/${runId}`).set(alice.auth);
    expect(res.status).to.equal(200);
    expect(res.body).to.have.keys(
      'runId',
      'chatId',
      'sessionId',
      'status',
      'model',
      'attempt',
      'createdAt',
      'startedAt',
      'finishedAt',
      'usage',
      'costMicros',
      'error',
      'steps',
      'finishReason',
      'traceId',
    );
    expect(res.body).to.include({
      runId,
      status: 'queued',
      model: 'local/echo',
      attempt: 0,
      startedAt: null,
      finishedAt: null,
      usage: null,
      costMicros: null,
      error: null,
    });
  });

  it('answers 404 run_not_found for another account’s run, exactly as for an unknown one', async () => {
    const runId = await startRunOk(api.app, alice.key, { prompt: 'mine' });
    const foreign = await request(api.app).get(`/api/chat/runs/${runId}`).set(bob.auth);
    const unknown = await request(api.app).get('/api/chat/runs/5b0e7b43-9d0c-4f4f-8a38-000000000000').set(bob.auth);
    const malformed = await request(api.app).get('/api/chat/runs/not-a-uuid').set(bob.auth);
    for (const res of [foreign, unknown, malformed]) {
      expect(res.status).to.equal(404);
      expect(res.body.error).to.equal('run_not_found');
    }
    expect(foreign.body.detail).to.equal(unknown.body.detail);
    const cancel = await request(api.app).post(`/api/chat/runs/${runId}/cancel`).set(bob.auth);
    expect(cancel.status).to.equal(404);
  });

  it('lets an ephemeral key read its own run only, and never write', async () => {
    const runId = await startRunOk(api.app, alice.key, { prompt: 'scoped' });
    const other = await startRunOk(api.app, alice.key, { prompt: 'other' });
    const key = await createEphemeralKey(api.deps.db, alice.accountId, runId);
    const auth = { authorization: `Bearer ${key}` };
    expect((await request(api.app).get(`/api/chat/runs/${runId}`).set(auth)).status).to.equal(200);
    expect((await request(api.app).get(`/api/chat/runs/${other}`).set(auth)).status).to.equal(404);
    const list = await request(api.app).get('/api/chat/runs').set(auth);
    expect(list.body.runs.map((r: { runId: string }) => r.runId)).to.deep.equal([runId]);
    const write = await request(api.app).post('/api/chat/runs').set(auth).send({ prompt: 'x' });
    expect(write.status).to.equal(403);
    expect(write.body.error).to.equal('scope_denied');
    expect((await request(api.app).post(`/api/chat/runs/${runId}/cancel`).set(auth)).status).to.equal(403);
  });

  it('answers 401 for an expired ephemeral key', async () => {
    const runId = await startRunOk(api.app, alice.key, { prompt: 'expiring' });
    const key = await createEphemeralKey(api.deps.db, alice.accountId, runId, -1_000);
    const res = await request(api.app).get(`/api/chat/runs/${runId}`).set('x-api-key', key);
    expect(res.status).to.equal(401);
    expect(res.body.error).to.equal('unauthorized');
  });

  describe('GET /api/chat/runs', () => {
    it('pages newest first with a cursor, filtering the tenant in SQL so no page is short', async () => {
      const carol = await createAccount(api.deps.db);
      const dave = await createAccount(api.deps.db);
      const mine: string[] = [];
      // Interleave another account's runs between the caller's.
      for (let i = 0; i < 7; i++) {
        mine.push(await startRunOk(api.app, carol.key, { prompt: `c${i}` }));
        await startRunOk(api.app, dave.key, { prompt: `d${i}` });
      }
      const seen: string[] = [];
      let cursor: string | null = null;
      const pageSizes: number[] = [];
      do {
        const res: request.Response = await request(api.app)
          .get('/api/chat/runs')
          .query({ limit: 3, ...(cursor ? { cursor } : {}) })
          .set(carol.auth);
        expect(res.status).to.equal(200);
        pageSizes.push(res.body.runs.length);
        seen.push(...res.body.runs.map((r: { runId: string }) => r.runId));
        cursor = res.body.nextCursor;
      } while (cursor);
      expect(pageSizes).to.deep.equal([3, 3, 1]);
      expect(seen).to.deep.equal([...mine].reverse());
    });

    it('filters by status and validates its query', async () => {
      const erin = await createAccount(api.deps.db);
      const runId = await startRunOk(api.app, erin.key, { prompt: 'x' });
      await api.deps.db.run.update({ where: { id: runId }, data: { status: 'failed' } });
      await startRunOk(api.app, erin.key, { prompt: 'y' });
      const failed = await request(api.app).get('/api/chat/runs?status=failed').set(erin.auth);
      expect(failed.body.runs.map((r: { runId: string }) => r.runId)).to.deep.equal([runId]);
      expect(failed.body.nextCursor).to.equal(null);
      // Runs in flight are found through open_runs: queued ones page like any others.
      const queued = [];
      for (const prompt of ['y2', 'y3']) queued.push(await startRunOk(api.app, erin.key, { prompt }));
      const firstPage = await request(api.app).get('/api/chat/runs?status=queued&limit=2').set(erin.auth);
      expect(firstPage.body.runs.map((r: { runId: string }) => r.runId)).to.deep.equal([...queued].reverse());
      const lastPage = await request(api.app).get(`/api/chat/runs?status=queued&limit=2&cursor=${firstPage.body.nextCursor}`).set(erin.auth);
      expect(lastPage.body.runs).to.have.length(1);
      expect(lastPage.body.runs[0].status).to.equal('queued');
      expect(lastPage.body.nextCursor).to.equal(null);
      const bad = await request(api.app).get('/api/chat/runs?limit=500').set(erin.auth);
      expect(bad.status).to.equal(400);
      expect((await request(api.app).get('/api/chat/runs?status=weird').set(erin.auth)).status).to.equal(400);
      expect((await request(api.app).get('/api/chat/runs?cursor=abc').set(erin.auth)).status).to.equal(400);
    });
  });

  describe('whoami and health', () => {
    it('tells a key who it is', async () => {
      const res = await request(api.app).get('/api/auth/whoami').set(alice.auth);
      expect(res.status).to.equal(200);
      expect(res.body).to.include({ accountId: alice.accountId, kind: 'account' });
      expect(res.body.scopes).to.deep.equal(['runs:write', 'runs:read']);
    });

    it('answers /healthz and /readyz', async () => {
      expect((await request(api.app).get('/healthz')).body).to.deep.equal({ status: 'ok' });
      const ready = await request(api.app).get('/readyz');
      expect(ready.status).to.equal(200);
      expect(ready.body.checks).to.deep.equal({ postgres: 'ok', redis: 'ok' });
    });

    it('answers unknown routes 404 in the error shape', async () => {
      const res = await request(api.app).get('/nope');
      expect(res.status).to.equal(404);
      expect(res.body).to.have.keys('error', 'detail', 'fix', 'docUrl', 'requestId');
    });
  });
});
