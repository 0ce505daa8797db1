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
});
