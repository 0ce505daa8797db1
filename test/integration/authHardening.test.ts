import { expect } from 'chai';
import request from 'supertest';
import { createAccount } from '../support/factories.js';
import { startApi, type ApiHarness } from '../support/harness.js';

describe('authentication before any work', () => {
  let api: ApiHarness;
  afterEach(() => api?.close());

  it('rate-limits failed authentications per client address (429 with Retry-After) while a valid key from it still works; X-Forwarded-For is not trusted by default', async () => {
    api = startApi({ AUTH_FAILURES_PER_MINUTE: '3' });
    const good = await createAccount(api.deps.db);
    const wrong = (i: number) => ({ authorization: `Bearer ry_sk_${'x'.repeat(43)}`, 'x-forwarded-for': `10.0.0.${i}` });
    for (let i = 0; i < 3; i++) expect((await request(api.app).get('/api/chat/runs').set(wrong(i))).status).to.equal(401);
    const limited = await request(api.app).get('/api/chat/runs').set(wrong(9));
    expect(limited.status, 'a fourth failure, whatever X-Forwarded-For says').to.equal(429);
    expect(limited.body.error).to.equal('rate_limited');
    expect(Number(limited.headers['retry-after'])).to.be.within(1, 60);
    const valid = await request(api.app)
      .get('/api/chat/runs')
      .set({ authorization: `Bearer ${good.key}` });
    expect(valid.status, 'a valid key from the limited address').to.equal(200);
  });

  it('counts nothing for requests without a credential (a page’s <img src>, CORS preflights): they stay 401, and a valid key works', async () => {
    api = startApi({ AUTH_FAILURES_PER_MINUTE: '2' });
    const good = await createAccount(api.deps.db);
    for (let i = 0; i < 10; i++) {
      expect((await request(api.app).get('/api/chat/runs')).status).to.equal(401);
      expect(
        (await request(api.app).options('/api/chat/runs').set({ origin: 'https://elsewhere.example', 'access-control-request-method': 'POST' })).status,
      ).to.equal(401);
    }
    expect((await request(api.app).get('/api/chat/runs').set({ authorization: 'Bearer ry_sk_nope' })).status, 'the first real failure').to.equal(401);
    expect(
      (
        await request(api.app)
          .get('/api/chat/runs')
          .set({ authorization: `Bearer ${good.key}` })
      ).status,
    ).to.equal(200);
  });

  it('says "add Bearer" when the Authorization header holds a bare key', async () => {
    api = startApi();
    const good = await createAccount(api.deps.db);
    const bare = await request(api.app).get('/api/chat/runs').set({ authorization: good.key });
    expect(bare.status).to.equal(401);
    expect(bare.body.detail).to.match(/without the word Bearer/);
    expect(bare.body.fix).to.match(/Authorization: Bearer <key>/);
  });

  it('counts failures in Redis: two api processes together allow what one does', async () => {
    api = startApi({ AUTH_FAILURES_PER_MINUTE: '3' });
    const other = startApi({ AUTH_FAILURES_PER_MINUTE: '3', QUEUE_PREFIX: api.prefix });
    try {
      const good = await createAccount(api.deps.db);
      const wrong = { authorization: `Bearer ry_sk_${'y'.repeat(43)}` };
      const statuses = [];
      for (const instance of [api, other, api]) statuses.push((await request(instance.app).get('/api/chat/runs').set(wrong)).status);
      expect(statuses).to.deep.equal([401, 401, 401]);
      for (const instance of [other, api]) {
        const limited = await request(instance.app).get('/api/chat/runs').set(wrong);
        expect([limited.status, limited.body.error], 'the fourth failure, on either process').to.deep.equal([429, 'rate_limited']);
        expect(
          (
            await request(instance.app)
              .get('/api/chat/runs')
              .set({ authorization: `Bearer ${good.key}` })
          ).status,
        ).to.equal(200);
      }
    } finally {
      await other.close();
    }
  });

  it('honours X-Forwarded-For only from the proxies TRUST_PROXY names', async () => {
    api = startApi({ AUTH_FAILURES_PER_MINUTE: '2', TRUST_PROXY: 'loopback' });
    const wrong = (address: string) => ({ authorization: 'Bearer ry_sk_nope', 'x-forwarded-for': address });
    for (let i = 0; i < 2; i++) await request(api.app).get('/api/chat/runs').set(wrong('203.0.113.7'));
    expect((await request(api.app).get('/api/chat/runs').set(wrong('203.0.113.7'))).status).to.equal(429);
    expect((await request(api.app).get('/api/chat/runs').set(wrong('203.0.113.8'))).status, 'another client behind the proxy').to.equal(401);
  });

  it('bounds guessing from rotating addresses (TRUST_PROXY=true, X-Forwarded-For forged each time) with the fleet-wide allowance', async () => {
    api = startApi({ AUTH_FAILURES_PER_MINUTE: '2', AUTH_FAILURES_FLEET_PER_MINUTE: '5', TRUST_PROXY: 'true' });
    const good = await createAccount(api.deps.db);
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      const res = await request(api.app)
        .get('/api/chat/runs')
        .set({ authorization: `Bearer ry_sk_${String(i).repeat(43)}`, 'x-forwarded-for': `198.51.100.${i}` });
      statuses.push(res.status);
    }
    expect(statuses).to.deep.equal([401, 401, 401, 401, 401, 429, 429, 429]);
    const valid = await request(api.app)
      .get('/api/chat/runs')
      .set({ authorization: `Bearer ${good.key}`, 'x-forwarded-for': '198.51.100.200' });
    expect(valid.status, 'the fleet allowance slows failures only').to.equal(200);
  });

  it('does not parse the body of an unauthenticated request: 401, not a JSON error', async () => {
    api = startApi();
    const res = await request(api.app).post('/api/chat/runs').set('content-type', 'application/json').send('{"not json');
    expect(res.status).to.equal(401);
    const authed = await createAccount(api.deps.db);
    const bad = await request(api.app)
      .post('/api/chat/runs')
      .set({ authorization: `Bearer ${authed.key}`, 'content-type': 'application/json' })
      .send('{"not json');
    expect(bad.status).to.equal(400);
    expect(bad.body.error).to.equal('invalid_json');
  });

  it('counts failed HTTP Basic guesses of the admin token like failed keys: 429 after the allowance', async () => {
    api = startApi({ AUTH_FAILURES_PER_MINUTE: '5', ADMIN_TOKEN: 'admin-token-0123456789' });
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) {
      const guess = Buffer.from(`oncall:guess-${i}`).toString('base64');
      statuses.push((await request(api.app).get('/admin/queues').set('authorization', `Basic ${guess}`)).status);
    }
    expect(statuses).to.deep.equal([401, 401, 401, 401, 401, 429, 429]);
    const right = Buffer.from('oncall:admin-token-0123456789').toString('base64');
    expect((await request(api.app).get('/admin/queues').set('authorization', `Basic ${right}`)).status, 'the right token still opens it').to.equal(200);
    expect((await request(api.app).get('/api/auth/whoami').set('authorization', 'Bearer admin-token-0123456789')).status).to.equal(200);
  });

  it('takes an admin-scoped key as the HTTP Basic password (a browser cannot send Bearer); a non-admin key there is 403', async () => {
    api = startApi({ ADMIN_TOKEN: 'admin-token-0123456789' });
    const admin = await createAccount(api.deps.db, ['admin']);
    const user = await createAccount(api.deps.db);
    const basic = (key: string) => ({ authorization: `Basic ${Buffer.from(`oncall:${key}`).toString('base64')}` });
    expect((await request(api.app).get('/admin/queues').set(basic(admin.key))).status).to.equal(200);
    expect((await request(api.app).get('/api/admin/runs').set(basic(admin.key))).status).to.equal(200);
    expect((await request(api.app).get('/admin/queues').set(basic(user.key))).status).to.equal(403);
    expect((await request(api.app).get('/api/chat/runs').set(basic(user.key))).status, 'Basic is for the admin surface only').to.equal(401);
  });

  it('refuses state-changing admin requests a cross-site page could send: non-JSON POSTs, and any write from another origin', async () => {
    api = startApi({ ADMIN_TOKEN: 'admin-token-0123456789' });
    const basic = { authorization: `Basic ${Buffer.from('oncall:admin-token-0123456789').toString('base64')}` };
    const runId = crypto.randomUUID();
    const path = `/api/admin/runs/${runId}/replay`;
    const plain = await request(api.app).post(path).set(basic).set('content-type', 'text/plain');
    expect([plain.status, plain.body.error]).to.deep.equal([415, 'unsupported_media_type']);
    const bodiless = await request(api.app).post(path).set(basic);
    expect(bodiless.status, 'no content type at all').to.equal(415);
    const crossSite = await request(api.app).post(path).set(basic).set({ 'content-type': 'application/json', 'sec-fetch-site': 'cross-site' });
    expect([crossSite.status, crossSite.body.error]).to.deep.equal([403, 'cross_site_request']);
    const foreign = await request(api.app).put('/admin/queues/api/queues/runs/pause').set(basic).set({ origin: 'https://evil.example' });
    expect(foreign.status, 'a write to Bull Board from another origin').to.equal(403);
    const json = await request(api.app).post(path).set(basic).set('content-type', 'application/json');
    expect([json.status, json.body.error], 'a JSON POST goes through (this run does not exist)').to.deep.equal([404, 'run_not_found']);
    // A Bearer token is no credential a browser sends by itself: an on-call curl needs no content type.
    const bearer = await request(api.app).post(path).set({ authorization: 'Bearer admin-token-0123456789' });
    expect([bearer.status, bearer.body.error], 'a bodiless Bearer POST').to.deep.equal([404, 'run_not_found']);
  });
});
