import { expect } from 'chai';
import request from 'supertest';
import { EventSource } from 'eventsource';
import { redactSecrets } from '../../shared/infra/logger.js';
import { createAccount, createEphemeralKey, type TestAccount } from '../support/factories.js';
import { startApi, startWorker, waitFor, type ApiHarness } from '../support/harness.js';
import { startRunOk, waitForRunStatus } from '../support/runs.js';
import { readSse } from '../support/sse.js';
import { startTcpProxy } from '../support/tcpProxy.js';
import type { FleetMember } from '../../worker/fleet/fleetMember.js';

const ORIGIN = 'https://app.example.com';

describe('web clients: stream tokens and CORS', function () {
  let api: ApiHarness;
  let worker: FleetMember;
  let alice: TestAccount;
  let base: string;

  before(async () => {
    api = startApi({ STREAM_CORS_ORIGINS: ORIGIN });
    worker = await startWorker(api.prefix);
    alice = await createAccount(api.deps.db);
    base = await api.url();
  });
  after(async () => {
    await worker.close(1_000);
    await api.close();
  });

  const mint = (runId: string, key = alice.key) => request(api.app).post(`/api/chat/runs/${runId}/stream-token`).set('authorization', `Bearer ${key}`);

  it('mints a read-only token for one run: a browser’s EventSource reads the stream with ?token=, and it reads the run and its messages', async () => {
    const runId = await startRunOk(api.app, alice.key, { prompt: 'seen from a web page' });
    const minted = await mint(runId);
    expect(minted.status).to.equal(201);
    expect(minted.body.token).to.match(/^ry_st_/);
    const ttl = Date.parse(minted.body.expiresAt) - Date.now();
    expect(ttl).to.be.within(500_000, 600_000);
    const token = minted.body.token as string;
    const received: string[] = [];
    const source = new EventSource(`${base}/api/chat/runs/${runId}/stream?token=${token}`);
    source.onmessage = (event) => received.push(event.data);
    await waitFor(() => source.readyState === EventSource.CLOSED, { what: 'the stream to end and the client to stop', timeoutMs: 15_000 });
    source.close();
    expect(received.at(-1)).to.equal('[DONE]');
    const bearer = { authorization: `Bearer ${token}` };
    const run = await request(api.app).get(`/api/chat/runs/${runId}`).set(bearer);
    expect(run.status).to.equal(200);
    expect((await request(api.app).get(`/api/chats/${run.body.chatId}/messages`).set(bearer)).status).to.equal(200);
  });

  it('a standard EventSource whose connection is cut mid-stream resumes by itself with nothing lost or repeated, and stops after [DONE]', async () => {
    const slowApi = startApi({ STREAM_CORS_ORIGINS: ORIGIN });
    const slowWorker = await startWorker(slowApi.prefix, { LOCAL_MODEL_DELAY_MS: '150' });
    const proxy = await startTcpProxy(Number(new URL(await slowApi.url()).port));
    try {
      const bob = await createAccount(slowApi.deps.db);
      const words = Array.from({ length: 40 }, (_, i) => `w${i}`).join(' ');
      const runId = await startRunOk(slowApi.app, bob.key, { prompt: words });
      const token = (await request(slowApi.app).post(`/api/chat/runs/${runId}/stream-token`).set('authorization', `Bearer ${bob.key}`)).body.token as string;
      const ids: string[] = [];
      let text = '';
      let opened = 0;
      const source = new EventSource(`http://127.0.0.1:${proxy.port}/api/chat/runs/${runId}/stream?token=${token}`);
      source.onopen = () => opened++;
      source.onmessage = (event) => {
        ids.push(event.lastEventId);
        if (event.data === '[DONE]') return;
        const chunk = JSON.parse(event.data) as { type: string; delta?: string };
        if (chunk.type === 'text-delta') text += chunk.delta;
      };
      for (const cutAfter of [5, 15]) {
        await waitFor(() => ids.length >= cutAfter, { what: `${cutAfter} events`, timeoutMs: 15_000 });
        proxy.cut(); // the connection drops mid-stream
        proxy.restore();
      }
      await waitFor(() => source.readyState === EventSource.CLOSED, { what: 'the client to stop after [DONE]', timeoutMs: 30_000 });
      source.close();
      expect(new Set(ids).size, 'no event twice').to.equal(ids.length);
      expect(text).to.equal(words);
      expect(ids.at(-1)).to.be.a('string');
      expect(opened, 'two resumptions; after [DONE] the reconnect got 204 and opened nothing').to.equal(3);
    } finally {
      await proxy.close();
      await slowWorker.close(1_000);
      await slowApi.close();
    }
  });

  it('is confined to its run and to reading; another run 404, writes 403, expired 401, its minting key revoked 401', async () => {
    const runId = await startRunOk(api.app, alice.key, { prompt: 'mine' });
    const other = await startRunOk(api.app, alice.key, { prompt: 'not yours' });
    const token = (await mint(runId)).body.token as string;
    const bearer = { authorization: `Bearer ${token}` };
    expect((await request(api.app).get(`/api/chat/runs/${other}`).set(bearer)).status).to.equal(404);
    expect((await readSse(`${base}/api/chat/runs/${other}/stream?token=${token}`, {})).res.status).to.equal(404);
    expect((await request(api.app).post(`/api/chat/runs/${runId}/cancel`).set(bearer)).status).to.equal(403);
    expect((await request(api.app).post('/api/chat/runs').set(bearer).send({ prompt: 'x' })).status).to.equal(403);
    expect((await mint(runId, token)).status, 'a token cannot mint tokens').to.equal(403);
    expect((await request(api.app).get('/api/chat/runs').query({ token }).set({})).status, '?token= only on the stream route').to.equal(401);
    const deliveries = await request(api.app).get(`/api/chat/runs/${runId}/webhook-deliveries`).set(bearer);
    expect([deliveries.status, deliveries.body.error], 'no webhook log for a stream token').to.deep.equal([403, 'scope_denied']);
    for (const key of [alice.key, await createEphemeralKey(api.deps.db, alice.accountId, runId)]) {
      const inUrl = await readSse(`${base}/api/chat/runs/${runId}/stream?token=${key}`, {});
      expect(inUrl.res.status, `${key.slice(0, 6)} in a URL`).to.equal(401);
    }

    const expiring = (await mint(runId)).body.token as string;
    await api.deps.db.apiKey.updateMany({ where: { kind: 'stream', runId, prefix: expiring.slice(0, 12) }, data: { expiresAt: new Date(Date.now() - 1_000) } });
    expect(
      (
        await request(api.app)
          .get(`/api/chat/runs/${runId}`)
          .set({ authorization: `Bearer ${expiring}` })
      ).status,
    ).to.equal(401);

    const bob = await createAccount(api.deps.db);
    const bobsRun = await startRunOk(api.app, bob.key, { prompt: 'bob' });
    const bobsToken = (await mint(bobsRun, bob.key)).body.token as string;
    await api.deps.db.apiKey.updateMany({ where: { accountId: bob.accountId, kind: 'account' }, data: { revokedAt: new Date() } });
    expect(
      (
        await request(api.app)
          .get(`/api/chat/runs/${bobsRun}`)
          .set({ authorization: `Bearer ${bobsToken}` })
      ).status,
    ).to.equal(401);
    await waitForRunStatus(api.deps, runId, ['completed']);
    expect((await request(api.app).get(`/api/chat/runs/${runId}`).set(bearer)).status, 'still readable after the run ended').to.equal(200);
  });

  it('ends a stream when the token that opened it expires or its minting key is revoked (a reconnect gets 401)', async function () {
    this.timeout(60_000);
    const slow = startApi({ STREAM_TOKEN_TTL_MS: '10000' });
    const slowWorker = await startWorker(slow.prefix, { LOCAL_MODEL_DELAY_MS: '100' });
    try {
      const slowBase = await slow.url();
      const carol = await createAccount(slow.deps.db);
      const longRun = () => startRunOk(slow.app, carol.key, { prompt: Array.from({ length: 400 }, (_, i) => `w${i}`).join(' ') });
      const mintFor = async (runId: string) =>
        (await request(slow.app).post(`/api/chat/runs/${runId}/stream-token`).set('authorization', `Bearer ${carol.key}`)).body.token as string;

      // Expiry: the token lives 10 s (the least allowed); the run streams for about 40 s. readSse gives up after 45 s: the server must end it first.
      const expiring = await longRun();
      const expiringToken = await mintFor(expiring);
      let started = Date.now();
      const read = await readSse(`${slowBase}/api/chat/runs/${expiring}/stream?token=${expiringToken}`, {}, { timeoutMs: 45_000 });
      expect(Date.now() - started, 'ms until the server ended the stream').to.be.below(30_000);
      expect(read.events.length, 'it streamed before').to.be.above(2);
      expect(
        read.events.map((e) => e.data),
        'ended before the run',
      ).not.to.include('[DONE]');
      expect((await slow.deps.db.run.findUnique({ where: { id: expiring } }))!.status).to.equal('running');
      expect((await readSse(`${slowBase}/api/chat/runs/${expiring}/stream?token=${expiringToken}`, {})).res.status).to.equal(401);

      // Revocation of the key that minted it: the stream ends within the key check's period (5 s) and a poll.
      const revoked = await longRun();
      const token = await mintFor(revoked);
      const reading = readSse(`${slowBase}/api/chat/runs/${revoked}/stream?token=${token}`, {}, { timeoutMs: 45_000 });
      await waitFor(async () => (await slow.deps.db.run.findUnique({ where: { id: revoked } }))?.status === 'running');
      await slow.deps.db.apiKey.updateMany({ where: { accountId: carol.accountId, kind: 'account' }, data: { revokedAt: new Date() } });
      started = Date.now();
      const cut = await reading;
      expect(Date.now() - started, 'ms from revocation to the end of the stream').to.be.below(25_000);
      expect(
        cut.events.map((e) => e.data),
        'ended before the run',
      ).not.to.include('[DONE]');
    } finally {
      await slowWorker.close(1_000);
      await slow.close();
    }
  });

  it('opens the read routes to STREAM_CORS_ORIGINS only: preflight answered, nothing else opened', async () => {
    const runId = await startRunOk(api.app, alice.key, { prompt: 'cors' });
    const preflight = await request(api.app)
      .options(`/api/chat/runs/${runId}/stream`)
      .set({ origin: ORIGIN, 'access-control-request-method': 'GET', 'access-control-request-headers': 'last-event-id' });
    expect(preflight.status).to.equal(204);
    expect(preflight.headers['access-control-allow-origin']).to.equal(ORIGIN);
    expect(preflight.headers['access-control-allow-headers']).to.include('last-event-id');
    const run = await request(api.app)
      .get(`/api/chat/runs/${runId}`)
      .set({ ...{ authorization: `Bearer ${alice.key}` }, origin: ORIGIN });
    expect(run.headers['access-control-allow-origin']).to.equal(ORIGIN);
    const elsewhere = await request(api.app)
      .get(`/api/chat/runs/${runId}`)
      .set({ authorization: `Bearer ${alice.key}`, origin: 'https://evil.example' });
    expect(elsewhere.headers['access-control-allow-origin']).to.equal(undefined);
    const post = await request(api.app)
      .post('/api/chat/runs')
      .set({ authorization: `Bearer ${alice.key}`, origin: ORIGIN })
      .send({ prompt: 'x' });
    expect(post.headers['access-control-allow-origin']).to.equal(undefined);
    const postPreflight = await request(api.app).options('/api/chat/runs').set({ origin: ORIGIN, 'access-control-request-method': 'POST' });
    expect(postPreflight.headers['access-control-allow-origin']).to.equal(undefined);
  });

  it('never logs a stream token in full', () => {
    const token = `ry_st_${'a'.repeat(43)}`;
    expect(redactSecrets(`GET /api/chat/runs/x/stream?token=${token}`)).to.not.include(token);
  });
});
