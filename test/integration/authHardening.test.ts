import { expect } from 'chai';
import request from 'supertest';
import { createAccount } from '../support/factories.js';
import { startApi, type ApiHarness } from '../support/harness.js';

describe('authentication before any work', () => {
  let api: ApiHarness;
  afterEach(() => api?.close());

  it('rate-limits failed authentications per client address (429 with Retry-After); X-Forwarded-For is not trusted by default', async () => {
    api = startApi({ AUTH_FAILURES_PER_MINUTE: '3' });
    const good = await createAccount(api.deps.db);
    for (let i = 0; i < 3; i++) {
      const res = await request(api.app)
        .get('/api/chat/runs')
        .set({ authorization: `Bearer ry_sk_${'x'.repeat(43)}`, 'x-forwarded-for': `10.0.0.${i}` });
      expect(res.status).to.equal(401);
    }
    const limited = await request(api.app)
      .get('/api/chat/runs')
      .set({ authorization: `Bearer ${good.key}`, 'x-forwarded-for': '10.9.9.9' });
    expect(limited.status).to.equal(429);
    expect(limited.body.error).to.equal('rate_limited');
    expect(Number(limited.headers['retry-after'])).to.be.within(1, 60);
  });

  it('honours X-Forwarded-For only from the proxies TRUST_PROXY names', async () => {
    api = startApi({ AUTH_FAILURES_PER_MINUTE: '2', TRUST_PROXY: 'loopback' });
    const good = await createAccount(api.deps.db);
    for (let i = 0; i < 2; i++) await request(api.app).get('/api/chat/runs').set({ authorization: 'Bearer nope', 'x-forwarded-for': '203.0.113.7' });
    expect(
      (
        await request(api.app)
          .get('/api/chat/runs')
          .set({ authorization: `Bearer ${good.key}`, 'x-forwarded-for': '203.0.113.7' })
      ).status,
    ).to.equal(429);
    expect(
      (
        await request(api.app)
          .get('/api/chat/runs')
          .set({ authorization: `Bearer ${good.key}`, 'x-forwarded-for': '203.0.113.8' })
      ).status,
    ).to.equal(200);
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
});
