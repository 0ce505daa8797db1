import { expect } from 'chai';
import fc from 'fast-check';
import request from 'supertest';
import { startApi, type ApiHarness } from '../support/harness.js';
import { createAccount, type TestAccount } from '../support/factories.js';

describe('fault: random bodies and headers (fast-check)', function () {
  this.timeout(300_000);
  let api: ApiHarness;
  let alice: TestAccount;
  before(async () => {
    api = startApi({ RATE_LIMIT_PER_MINUTE: '1000000', ACCOUNT_MAX_ACTIVE_RUNS: '100000' });
    alice = await createAccount(api.deps.db);
  });
  after(() => api.close());

  const message = fc.record(
    {
      role: fc.constantFrom('user', 'assistant', 'system', 'tool'),
      parts: fc.array(fc.record({ type: fc.constantFrom('text', 'image'), text: fc.string() }), { maxLength: 3 }),
    },
    { requiredKeys: [] },
  );
  const body = fc.oneof(
    fc.anything(),
    fc.record(
      {
        prompt: fc.oneof(fc.string(), fc.integer(), fc.constant(null)),
        messages: fc.array(message, { maxLength: 4 }),
        model: fc.oneof(fc.string(), fc.constantFrom('local/echo', 'openai/x')),
        maxOutputTokens: fc.oneof(fc.integer(), fc.double()),
        metadata: fc.dictionary(fc.string(), fc.anything(), { maxKeys: 25 }),
        extra: fc.anything(),
      },
      { requiredKeys: [] },
    ),
  );
  const headers = fc.record(
    {
      'idempotency-key': fc.string({ maxLength: 300 }),
      authorization: fc.oneof(fc.constant(`Bearer ${'x'}`), fc.string(), fc.constant('bearer ry_sk_' + 'A'.repeat(43))),
      'content-type': fc.constantFrom('application/json', 'text/plain', 'application/json; charset=utf-16', 'application/x-www-form-urlencoded'),
      'last-event-id': fc.string(),
    },
    { requiredKeys: [] },
  );

  it('never answers 5xx, and every error has the contract’s shape', async () => {
    let checked = 0;
    await fc.assert(
      fc.asyncProperty(body, headers, fc.boolean(), async (payload, extraHeaders, authed) => {
        const raw = JSON.stringify(payload) ?? 'null';
        const req = request(api.app).post('/api/chat/runs');
        for (const [name, value] of Object.entries(extraHeaders)) {
          if (/^[\t\x20-\x7e]*$/.test(value)) req.set(name, value);
        }
        if (authed) req.set('authorization', `Bearer ${alice.key}`);
        const res = await req.send(raw);
        checked++;
        expect(res.status, `${res.status} for ${raw.slice(0, 200)}`).to.be.below(500);
        if (res.status >= 400) {
          expect(res.body).to.have.keys('error', 'detail', 'fix', 'docUrl', 'requestId');
          expect(res.body.error).to.match(/^[a-z_]+$/);
        }
      }),
      { numRuns: 2_000 },
    );
    expect(checked).to.be.at.least(2_000);
  });

  it('never answers 5xx on any route, whatever the path segments, query strings and headers', async () => {
    const runId = (await request(api.app).post('/api/chat/runs').set('authorization', `Bearer ${alice.key}`).send({ prompt: 'fuzzed' })).body.runId as string;
    await request(api.app).post(`/api/chat/runs/${runId}/cancel`).set('authorization', `Bearer ${alice.key}`); // finished: its stream ends at once
    const segment = fc.oneof(fc.constant(runId), fc.uuid(), fc.string({ maxLength: 40 }), fc.constantFrom('0', '-1', '9'.repeat(30), '%00', '..', '%E0%A4%A'));
    const query = fc.dictionary(
      fc.constantFrom('limit', 'cursor', 'status', 'before', 'after', 'token', 'since', 'x'),
      fc.oneof(fc.string({ maxLength: 30 }), fc.integer().map(String), fc.constantFrom('9999999999999999999', '-1', '1e400', 'queued', '1-1', '0-0')),
      { maxKeys: 3 },
    );
    const routes: [string, (id: string) => string][] = [
      ['get', () => '/api/chat/runs'],
      ['get', (id) => `/api/chat/runs/${id}`],
      ['get', (id) => `/api/chat/runs/${id}/stream`],
      ['post', (id) => `/api/chat/runs/${id}/cancel`],
      ['post', (id) => `/api/chat/runs/${id}/tool-results`],
      ['post', (id) => `/api/chat/runs/${id}/stream-token`],
      ['get', (id) => `/api/chat/runs/${id}/webhook-deliveries`],
      ['get', (id) => `/api/chats/${id}/messages`],
      ['post', (id) => `/api/chats/${id}/messages`],
      ['get', () => '/api/chats'],
      ['get', (id) => `/api/chats/${id}`],
      ['get', (id) => `/api/chats/${id}/stream`],
      ['post', (id) => `/api/chats/${id}/interrupt`],
      ['get', (id) => `/api/chats/${id}/queued-messages`],
      ['delete', (id) => `/api/chats/${id}/queued-messages/${id}`],
      ['post', (id) => `/api/chats/${id}/queued-messages/${id}/promote`],
      ['post', (id) => `/api/chats/${id}/archive`],
      ['delete', (id) => `/api/chats/${id}`],
      ['get', () => '/api/auth/whoami'],
      ['post', () => '/api/admin/runs/replay'],
      ['post', (id) => `/api/admin/runs/${id}/replay`],
      ['get', () => '/api/admin/runs'],
      ['post', (id) => `/api/admin/webhook-events/${id}/redeliver`],
      ['get', () => '/healthz'],
    ];
    const routeHeaders = fc.record(
      {
        'last-event-id': fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom('1-1', '0-0', '99999999999999999999-1', '0-9')),
        'idempotency-key': fc.string({ maxLength: 300 }),
        'x-request-id': fc.string({ maxLength: 300 }),
        'content-type': fc.constantFrom('application/json', 'text/plain', 'application/json; charset=latin1', 'multipart/form-data'),
        'content-encoding': fc.constantFrom('gzip', 'br', 'identity', 'x-unknown'),
        authorization: fc.oneof(fc.constant(`Bearer ${alice.key}`), fc.string({ maxLength: 60 })),
      },
      { requiredKeys: [] },
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...routes), segment, query, routeHeaders, fc.anything(), async ([method, path], id, params, extraHeaders, payload) => {
        const search = new URLSearchParams(params as Record<string, string>).toString();
        const url = `${path(encodeURIComponent(id).replace(/%25/g, '%'))}${search ? `?${search}` : ''}`;
        const req = method === 'get' ? request(api.app).get(url) : method === 'delete' ? request(api.app).delete(url) : request(api.app).post(url);
        for (const [name, value] of Object.entries(extraHeaders)) {
          if (/^[\t\x20-\x7e]*$/.test(value)) req.set(name, value);
        }
        req.timeout(10_000);
        const res = method === 'post' ? await req.send(JSON.stringify(payload) ?? 'null') : await req;
        expect(res.status, `${res.status} for ${method} ${url}`).to.be.below(500);
        if (res.status >= 400) {
          const { details: _details, ...shape } = res.body as Record<string, unknown>;
          expect(shape, `${method} ${url}`).to.have.keys('error', 'detail', 'fix', 'docUrl', 'requestId');
        }
      }),
      { numRuns: 1_500 },
    );
  });
});
