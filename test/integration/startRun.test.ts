import { expect } from 'chai';
import request from 'supertest';
import { Redis } from 'ioredis';
import { RunQueues } from '../../shared/infra/runQueues.js';
import { RunAdmission } from '../../shared/flow/runAdmission.js';
import { hashKey } from '../../shared/accounts/keys.js';
import { startApi, waitFor, type ApiHarness } from '../support/harness.js';
import { createAccount, type TestAccount } from '../support/factories.js';
import { postRun } from '../support/runs.js';

function expectErrorShape(body: Record<string, unknown>, code: string) {
  expect(body).to.have.keys('error', 'detail', 'fix', 'docUrl', 'requestId');
  expect(body.error).to.equal(code);
  for (const field of ['detail', 'fix', 'docUrl', 'requestId']) expect(body[field]).to.be.a('string').and.not.empty;
}

describe('POST /api/chat/runs', () => {
  let api: ApiHarness;
  let alice: TestAccount;

  before(async () => {
    api = startApi();
    alice = await createAccount(api.deps.db);
  });
  after(() => api.close());

  it('accepts a prompt with 202, Location and the ids, and provisions session, chat, message, run and an ephemeral key', async () => {
    const res = await postRun(api.app, alice.key, { prompt: '  hello world  ', title: 'greeting', metadata: { ticket: 'T-1' } });
    expect(res.status).to.equal(202);
    expect(res.body).to.have.keys('runId', 'chatId', 'sessionId', 'status');
    expect(res.body.status).to.equal('queued');
    expect(res.headers.location).to.equal(`/api/chat/runs/${res.body.runId}`);
    expect(res.headers['x-request-id']).to.be.a('string');

    const db = api.deps.db;
    const run = await db.run.findUniqueOrThrow({ where: { id: res.body.runId } });
    expect(run).to.include({ accountId: alice.accountId, chatId: res.body.chatId, sessionId: res.body.sessionId, status: 'queued', model: 'local/echo' });
    const messages = await db.message.findMany({ where: { chatId: res.body.chatId } });
    expect(messages).to.have.length(1);
    expect(messages[0]!.parts).to.deep.equal([{ type: 'text', text: 'hello world' }]);
    const chat = await db.chat.findUniqueOrThrow({ where: { id: res.body.chatId } });
    expect(chat.title).to.equal('greeting');
    const keys = await db.apiKey.findMany({ where: { runId: run.id } });
    expect(keys).to.have.length(1);
    expect(keys[0]).to.include({ kind: 'ephemeral', accountId: alice.accountId, revokedAt: null });
    expect(keys[0]!.scopes).to.deep.equal(['runs:read']);
    expect(keys[0]!.expiresAt!.getTime() - Date.now()).to.be.within(800_000, 900_000);

    const job = await api.deps.runQueues.forRun(run.id).getJob(run.id);
    expect(job, 'job enqueued with jobId = runId').to.exist;
    // No traceparent: nothing is traced here (no OTEL_EXPORTER_OTLP_ENDPOINT).
    expect(job!.data).to.have.keys('runId', 'accountId', 'keyId', 'ephemeralKey', 'priority', 'timeline');
    expect(job!.data.timeline, 'Bull Board links the run’s timeline page').to.equal(`/admin/runs/${run.id}`);
    expect(JSON.stringify(job!.data)).to.not.match(/ry_ek_/);
  });

  it('stores UI messages in order', async () => {
    const messages = [
      { role: 'system', parts: [{ type: 'text', text: 'be brief' }] },
      { id: 'm1', role: 'user', parts: [{ type: 'text', text: 'one' }] },
      { role: 'assistant', parts: [{ type: 'text', text: 'two' }] },
      { role: 'user', parts: [{ type: 'text', text: 'three' }] },
    ];
    const res = await postRun(api.app, alice.key, { messages });
    expect(res.status).to.equal(202);
    const stored = await api.deps.db.message.findMany({ where: { chatId: res.body.chatId }, orderBy: { seq: 'asc' } });
    expect(stored.map((m) => [m.role, (m.parts as { text: string }[])[0]!.text])).to.deep.equal([
      ['system', 'be brief'],
      ['user', 'one'],
      ['assistant', 'two'],
      ['user', 'three'],
    ]);
  });

  it('provisions concurrent POSTs of one account, each with its own chat, messages in order, title, metadata and key', async () => {
    const bodies = Array.from({ length: 12 }, (_, i) => ({
      messages: [
        { role: 'user', parts: [{ type: 'text', text: `q${i}` }] },
        { role: 'assistant', parts: [{ type: 'text', text: `a${i}` }] },
        { role: 'user', parts: [{ type: 'text', text: `again ${i}` }] },
      ],
      title: `chat ${i}`,
      metadata: { n: String(i) },
      ...(i % 2 ? { system: `sys ${i}`, maxOutputTokens: i + 1 } : {}),
    }));
    const answers = await Promise.all(bodies.map((body) => postRun(api.app, alice.key, body)));
    const db = api.deps.db;
    for (const [i, res] of answers.entries()) {
      expect(res.status).to.equal(202);
      const run = await db.run.findUniqueOrThrow({ where: { id: res.body.runId }, include: { chat: true, apiKeys: true } });
      expect(run).to.include({
        chatId: res.body.chatId,
        sessionId: res.body.sessionId,
        system: i % 2 ? `sys ${i}` : null,
        maxOutputTokens: i % 2 ? i + 1 : null,
      });
      expect(run.chat).to.include({ title: `chat ${i}` });
      expect(run.chat.metadata).to.deep.equal({ n: String(i) });
      expect(run.apiKeys.map((k) => k.kind)).to.deep.equal(['ephemeral']);
      const stored = await db.message.findMany({ where: { chatId: res.body.chatId }, orderBy: { seq: 'asc' } });
      expect(stored.map((m) => (m.parts as { text: string }[])[0]!.text)).to.deep.equal([`q${i}`, `a${i}`, `again ${i}`]);
    }
    // Jobs of POSTs provisioned together are added together: each still has its own job, id = runId.
    const jobs = await Promise.all(answers.map((res) => api.deps.runQueues.forRun(res.body.runId).getJob(res.body.runId)));
    expect(jobs.map((job) => job?.data.runId)).to.deep.equal(answers.map((res) => res.body.runId));
  });

  describe('validation', () => {
    const cases: [string, unknown, string, RegExp][] = [
      ['neither prompt nor messages', {}, 'validation_failed', /exactly one of "prompt" or "messages"/],
      ['both prompt and messages', { prompt: 'a', messages: [{ role: 'user', parts: [{ type: 'text', text: 'a' }] }] }, 'validation_failed', /exactly one/],
      ['a blank prompt', { prompt: '   ' }, 'validation_failed', /prompt/],
      ['a prompt over 100000 chars', { prompt: 'x'.repeat(100_001) }, 'validation_failed', /prompt/],
      ['an unknown field', { prompt: 'a', temperature: 2 }, 'unknown_field', /"temperature"/],
      ['an unknown field inside a message', { messages: [{ role: 'user', parts: [{ type: 'text', text: 'a' }], extra: 1 }] }, 'unknown_field', /"extra"/],
      [
        'a last message not from the user',
        { messages: [{ role: 'assistant', parts: [{ type: 'text', text: 'a' }] }] },
        'validation_failed',
        /last message must be from the user/,
      ],
      ['an empty messages list', { messages: [] }, 'validation_failed', /messages/],
      ['a bad role', { messages: [{ role: 'tool', parts: [{ type: 'text', text: 'a' }] }] }, 'validation_failed', /role/],
      ['maxOutputTokens out of range', { prompt: 'a', maxOutputTokens: 32_001 }, 'validation_failed', /maxOutputTokens/],
      ['a title over 200 chars', { prompt: 'a', title: 't'.repeat(201) }, 'validation_failed', /title/],
      [
        'more than 20 metadata pairs',
        { prompt: 'a', metadata: Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`k${i}`, 'v'])) },
        'validation_failed',
        /metadata/,
      ],
      ['a non-string metadata value', { prompt: 'a', metadata: { a: 1 } }, 'validation_failed', /metadata/],
      ['a model of an unconfigured provider', { prompt: 'a', model: 'openai/gpt-4o' }, 'model_unavailable', /OpenAI/],
      ['an unknown provider', { prompt: 'a', model: 'acme/x' }, 'model_unavailable', /acme/],
      ['a NUL in the prompt (Postgres cannot store it)', { prompt: 'a\u0000b' }, 'validation_failed', /^prompt contains a NUL character/],
      ['a NUL in a metadata value', { prompt: 'a', metadata: { k: 'x\u0000' } }, 'validation_failed', /^metadata\.k contains a NUL/],
      [
        'a lone surrogate in a message',
        { messages: [{ role: 'user', parts: [{ type: 'text', text: 'a\ud800' }] }] },
        'validation_failed',
        /^messages\[0\]\.parts\[0\]\.text contains an unpaired surrogate/,
      ],
    ];
    for (const [what, body, code, detail] of cases) {
      it(`rejects ${what} with 400 ${code}`, async () => {
        const res = await postRun(api.app, alice.key, body as Record<string, unknown>);
        expect(res.status).to.equal(400);
        expectErrorShape(res.body, code);
        expect(res.body.detail).to.match(detail);
      });
    }

    it('rejects a __proto__ key (a schema would drop it silently) with 400 naming it, and creates nothing', async () => {
      const account = await createAccount(api.deps.db);
      const raw = '{"prompt":"a","metadata":{"__proto__":{"polluted":"yes"}}}';
      const res = await request(api.app).post('/api/chat/runs').set(account.auth).set('content-type', 'application/json').send(raw);
      expect(res.status).to.equal(400);
      expectErrorShape(res.body, 'validation_failed');
      expect(res.body.detail).to.match(/^metadata\.__proto__ contains a key named __proto__/);
      expect(await api.deps.db.run.count({ where: { accountId: account.accountId } })).to.equal(0);
    });

    it('rejects malformed JSON with 400 invalid_json', async () => {
      const res = await request(api.app).post('/api/chat/runs').set(alice.auth).set('content-type', 'application/json').send('{"prompt": ');
      expect(res.status).to.equal(400);
      expectErrorShape(res.body, 'invalid_json');
    });

    it('rejects a body over 1 MiB with 413', async () => {
      const res = await postRun(api.app, alice.key, { prompt: 'x'.repeat(1024 * 1024 + 10) });
      expect(res.status).to.equal(413);
      expectErrorShape(res.body, 'payload_too_large');
    });

    it('rejects a non-JSON body with 415', async () => {
      const res = await request(api.app).post('/api/chat/runs').set(alice.auth).set('content-type', 'text/plain').send('hello');
      expect(res.status).to.equal(415);
      expectErrorShape(res.body, 'unsupported_media_type');
    });

    it('creates nothing for a rejected request', async () => {
      const before = await api.deps.db.run.count({ where: { accountId: alice.accountId } });
      await postRun(api.app, alice.key, { prompt: 'a', bogus: true });
      expect(await api.deps.db.run.count({ where: { accountId: alice.accountId } })).to.equal(before);
    });
  });

  describe('auth', () => {
    it('answers 401 unauthorized without a key, with an unknown key, and with a revoked key', async () => {
      const none = await request(api.app).post('/api/chat/runs').send({ prompt: 'a' });
      expect(none.status).to.equal(401);
      expectErrorShape(none.body, 'unauthorized');
      const unknown = await postRun(api.app, 'ry_sk_' + 'A'.repeat(43), { prompt: 'a' });
      expect(unknown.status).to.equal(401);
      const bob = await createAccount(api.deps.db);
      await api.deps.db.apiKey.updateMany({ where: { hash: hashKey(bob.key) }, data: { revokedAt: new Date() } });
      const revoked = await postRun(api.app, bob.key, { prompt: 'a' });
      expect(revoked.status).to.equal(401);
      expectErrorShape(revoked.body, 'unauthorized');
    });

    it('accepts x-api-key and a lower-case bearer keyword', async () => {
      const viaHeader = await request(api.app).post('/api/chat/runs').set('x-api-key', alice.key).send({ prompt: 'a' });
      expect(viaHeader.status).to.equal(202);
      const lower = await request(api.app).post('/api/chat/runs').set('authorization', `bearer ${alice.key}`).send({ prompt: 'a' });
      expect(lower.status).to.equal(202);
    });

    it('answers 403 scope_denied when a valid key lacks runs:write', async () => {
      const reader = await createAccount(api.deps.db, ['runs:read']);
      const denied = await postRun(api.app, reader.key, { prompt: 'a' });
      expect(denied.status).to.equal(403);
      expectErrorShape(denied.body, 'scope_denied');
    });

    it('echoes the caller’s x-request-id', async () => {
      const res = await request(api.app).get('/api/chat/runs/00000000-0000-4000-8000-000000000000').set(alice.auth).set('x-request-id', 'trace-123');
      expect(res.headers['x-request-id']).to.equal('trace-123');
      expect(res.body.requestId).to.equal('trace-123');
    });
  });

  describe('Idempotency-Key', () => {
    it('returns the first response for a repeat and creates nothing more', async () => {
      const headers = { 'Idempotency-Key': `key-${Date.now()}` };
      const first = await postRun(api.app, alice.key, { prompt: 'same' }, headers);
      const second = await postRun(api.app, alice.key, { prompt: 'same' }, headers);
      expect(first.status).to.equal(202);
      expect(second.status).to.equal(202);
      expect(second.body).to.deep.equal(first.body);
      expect(await api.deps.db.run.count({ where: { idempotencyKey: headers['Idempotency-Key'] } })).to.equal(1);
    });

    it('creates exactly one run for 20 concurrent duplicates', async () => {
      const headers = { 'Idempotency-Key': `burst-${Date.now()}` };
      const answers = await Promise.all(Array.from({ length: 20 }, () => postRun(api.app, alice.key, { prompt: 'burst' }, headers)));
      expect(answers.map((a) => a.status)).to.deep.equal(Array(20).fill(202));
      expect(new Set(answers.map((a) => a.body.runId)).size).to.equal(1);
      expect(await api.deps.db.run.count({ where: { idempotencyKey: headers['Idempotency-Key'] } })).to.equal(1);
    });

    it('answers 422 idempotency_key_reused for the same key with a different body', async () => {
      const headers = { 'Idempotency-Key': `reuse-${Date.now()}` };
      await postRun(api.app, alice.key, { prompt: 'one' }, headers);
      const res = await postRun(api.app, alice.key, { prompt: 'two' }, headers);
      expect(res.status).to.equal(422);
      expectErrorShape(res.body, 'idempotency_key_reused');
    });

    it('keeps keys apart between accounts', async () => {
      const bob = await createAccount(api.deps.db);
      const headers = { 'Idempotency-Key': `shared-${Date.now()}` };
      const a = await postRun(api.app, alice.key, { prompt: 'x' }, headers);
      const b = await postRun(api.app, bob.key, { prompt: 'x' }, headers);
      expect(a.body.runId).to.not.equal(b.body.runId);
    });

    it('rejects a key over 255 characters', async () => {
      const res = await postRun(api.app, alice.key, { prompt: 'x' }, { 'Idempotency-Key': 'k'.repeat(256) });
      expect(res.status).to.equal(400);
      expectErrorShape(res.body, 'invalid_idempotency_key');
    });
  });

  describe('limits', () => {
    it('answers 429 too_many_active_runs with Retry-After past ACCOUNT_MAX_ACTIVE_RUNS, even under concurrency', async () => {
      const limited = startApi({ ACCOUNT_MAX_ACTIVE_RUNS: '3' });
      try {
        const carol = await createAccount(limited.deps.db);
        const answers = await Promise.all(Array.from({ length: 6 }, () => postRun(limited.app, carol.key, { prompt: 'x' })));
        const statuses = answers.map((a) => a.status).sort();
        expect(statuses).to.deep.equal([202, 202, 202, 429, 429, 429]);
        const refused = answers.find((a) => a.status === 429)!;
        expectErrorShape(refused.body, 'too_many_active_runs');
        expect(refused.headers['retry-after']).to.match(/^\d+$/);
        expect(await limited.deps.db.run.count({ where: { accountId: carol.accountId } })).to.equal(3);
      } finally {
        await limited.close();
      }
    });

    it('gives a run’s place back when it ends, whichever way its status changes', async () => {
      const limited = startApi({ ACCOUNT_MAX_ACTIVE_RUNS: '2' });
      const db = limited.deps.db;
      const activeCount = async (accountId: string) => {
        const [slots] = await db.$queryRaw<{ sum: bigint | null }[]>`SELECT sum(active) FROM account_active_runs WHERE account_id = ${accountId}::uuid`;
        return Number(slots!.sum ?? 0);
      };
      try {
        const erin = await createAccount(db);
        const first = await postRun(limited.app, erin.key, { prompt: 'a' });
        const second = await postRun(limited.app, erin.key, { prompt: 'b' });
        expect((await postRun(limited.app, erin.key, { prompt: 'c' })).status).to.equal(429);

        const cancelled = await request(limited.app).post(`/api/chat/runs/${first.body.runId}/cancel`).set(erin.auth);
        expect(cancelled.body.status).to.equal('cancelled');
        const third = await postRun(limited.app, erin.key, { prompt: 'd' });
        expect(third.status).to.equal(202);
        expect(await activeCount(erin.accountId)).to.equal(2);

        // Every path that changes a run's status goes through the same count: running, ending,
        // reopening for a replay, and deleting (an enqueue that failed removes the session).
        await db.run.update({ where: { id: second.body.runId }, data: { status: 'running' } });
        expect(await activeCount(erin.accountId)).to.equal(2);
        await db.run.update({ where: { id: second.body.runId }, data: { status: 'failed' } });
        expect(await activeCount(erin.accountId)).to.equal(1);
        await db.run.update({ where: { id: second.body.runId }, data: { status: 'queued' } });
        expect(await activeCount(erin.accountId)).to.equal(2);
        await db.session.delete({ where: { id: third.body.sessionId } });
        expect(await activeCount(erin.accountId)).to.equal(1);
        expect(await db.run.count({ where: { accountId: erin.accountId, status: { in: ['queued', 'running'] } } })).to.equal(1);
        // Open (the sweep's work list) until cleaned up: the cancelled run was cleaned up with its
        // cancel; the one ended by a bare status write was not, so the sweep still sees it.
        const open = await db.openRun.findMany({ where: { run: { accountId: erin.accountId } }, select: { runId: true } });
        expect(open.map((o) => o.runId)).to.deep.equal([second.body.runId]);
        expect((await postRun(limited.app, erin.key, { prompt: 'e' })).status).to.equal(202);
      } finally {
        await limited.close();
      }
    });

    it('answers 429 rate_limited past RATE_LIMIT_PER_MINUTE for the key', async () => {
      const limited = startApi({ RATE_LIMIT_PER_MINUTE: '3' });
      try {
        const dave = await createAccount(limited.deps.db);
        // The window is a calendar minute: start well inside one, so the requests share it.
        await waitFor(() => Date.now() % 60_000 < 45_000, { what: 'the start of a minute', timeoutMs: 20_000, intervalMs: 250 });
        const statuses = [];
        for (let i = 0; i < 5; i++) statuses.push((await request(limited.app).get('/api/chat/runs').set(dave.auth)).status);
        expect(statuses.slice(0, 3)).to.deep.equal([200, 200, 200]);
        expect(statuses.slice(3)).to.deep.equal([429, 429]);
        const res = await request(limited.app).get('/api/chat/runs').set(dave.auth);
        expectErrorShape(res.body, 'rate_limited');
        expect(res.headers['retry-after']).to.match(/^\d+$/);

        // Concurrent requests are counted together, and exactly: each gets its own place in the count.
        const erin = await createAccount(limited.deps.db);
        const burst = await Promise.all(Array.from({ length: 10 }, () => request(limited.app).get('/api/chat/runs').set(erin.auth)));
        const allowed = burst.filter((r) => r.status === 200);
        expect(allowed).to.have.length(3);
        expect(burst.filter((r) => r.status === 429)).to.have.length(7);
        expect(allowed.map((r) => r.headers['ratelimit-remaining']).sort()).to.deep.equal(['0', '1', '2']);
      } finally {
        await limited.close();
      }
    });
  });

  describe('when Redis is unreachable', () => {
    it('undoes the provisioned run and answers 503 queue_unavailable when the enqueue fails', async () => {
      const erin = await createAccount(api.deps.db);
      // A queue pointed at a closed port: provisioning succeeds, the enqueue cannot.
      const deadRedis = new Redis('redis://127.0.0.1:1', { enableOfflineQueue: false, maxRetriesPerRequest: 0, lazyConnect: true, retryStrategy: () => null });
      deadRedis.on('error', () => {});
      const deadQueues = new RunQueues(deadRedis, api.prefix, 1);
      for (const queue of deadQueues.all) queue.on('error', () => {});
      const realAdmission = api.deps.admission;
      api.deps.admission = new RunAdmission({ ...api.deps, redis: deadRedis, runQueues: deadQueues });
      try {
        const started = Date.now();
        const res = await postRun(api.app, erin.key, { prompt: 'doomed' });
        expect(res.status).to.equal(503);
        expectErrorShape(res.body, 'queue_unavailable');
        expect(Date.now() - started).to.be.below(5_000);
      } finally {
        api.deps.admission = realAdmission;
        await deadQueues.close().catch(() => {});
        deadRedis.disconnect();
      }
      const db = api.deps.db;
      expect(await db.run.count({ where: { accountId: erin.accountId } })).to.equal(0);
      expect(await db.session.count({ where: { accountId: erin.accountId } })).to.equal(0);
      expect(await db.chat.count({ where: { accountId: erin.accountId } })).to.equal(0);
      expect(await db.apiKey.count({ where: { accountId: erin.accountId, kind: 'ephemeral', revokedAt: null } })).to.equal(0);
    });

    it('answers 503 at once, without hanging, when the api cannot reach Redis at all', async () => {
      const down = startApi({ REDIS_URL: 'redis://127.0.0.1:1' });
      try {
        const frank = await createAccount(down.deps.db);
        const started = Date.now();
        const res = await postRun(down.app, frank.key, { prompt: 'x' });
        expect(res.status).to.equal(503);
        expectErrorShape(res.body, 'queue_unavailable');
        expect(Date.now() - started).to.be.below(3_000);
        expect(await down.deps.db.run.count({ where: { accountId: frank.accountId } })).to.equal(0);
        const ready = await request(down.app).get('/readyz');
        expect(ready.status).to.equal(503);
        expect(ready.body.checks).to.deep.equal({ postgres: 'ok', redis: 'unreachable' });
      } finally {
        await down.close();
      }
    });
  });
});
