import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import path from 'node:path';
import { expect } from 'chai';
import request from 'supertest';
import { createAccount } from '../support/factories.js';
import { startApi, type ApiHarness } from '../support/harness.js';
import { testEnv } from '../support/testConfig.js';
import { loadConfig } from '../../shared/infra/config.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** What a newcomer meets in the first hour with curl: clear answers, never a silent success or a 500. */
describe('the first hour: what a newcomer meets', function () {
  this.timeout(60_000);
  let api: ApiHarness;
  afterEach(() => api?.close());

  it('exits non-zero naming the port when it is already taken (a second npm start must not look like it serves)', async () => {
    const busy: Server = await new Promise((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => resolve(server));
    });
    const port = (busy.address() as { port: number }).port;
    try {
      const result = await new Promise<{ code: number | null; output: string }>((resolve) => {
        const child = execFile(
          process.execPath,
          ['--import', 'tsx', path.join(ROOT, 'api/main.ts')],
          { env: { PATH: process.env.PATH ?? '', ...testEnv({ PORT: String(port), LOG_LEVEL: 'error' }) }, timeout: 45_000 },
          (_err, stdout, stderr) => resolve({ code: child.exitCode, output: stdout + stderr }),
        );
      });
      expect(result.code).to.equal(1);
      expect(result.output).to.include(`port ${port} is already in use`);
      expect(result.output).to.not.include('api listening');
    } finally {
      busy.close();
    }
  });

  it('takes TRUST_PROXY=true as "trust every hop" and names the variable for a value express cannot use', () => {
    expect(loadConfig({}, testEnv({ TRUST_PROXY: 'true' })).TRUST_PROXY).to.equal(true);
    expect(loadConfig({}, testEnv({ TRUST_PROXY: 'loopback, 10.0.0.0/8' })).TRUST_PROXY).to.equal('loopback, 10.0.0.0/8');
    expect(() => loadConfig({}, testEnv({ TRUST_PROXY: 'yes' }))).to.throw(/TRUST_PROXY "yes" is not/);
    api = startApi({ TRUST_PROXY: 'true' });
    expect(api.app.get('trust proxy fn')('203.0.113.1', 0)).to.equal(true);
  });

  it('answers 405 with Allow for a path that takes other methods, and 404 for a path that does not exist', async () => {
    api = startApi();
    const { key } = await createAccount(api.deps.db);
    const wrong = await request(api.app).delete('/api/chat/runs').set('authorization', `Bearer ${key}`);
    expect([wrong.status, wrong.body.error]).to.deep.equal([405, 'method_not_allowed']);
    expect(wrong.headers.allow).to.equal('GET, HEAD, POST');
    const put = await request(api.app).put(`/api/chat/runs/${crypto.randomUUID()}/cancel`).set('authorization', `Bearer ${key}`);
    expect([put.status, put.headers.allow]).to.deep.equal([405, 'POST']);
    expect((await request(api.app).get('/api/nothing-here').set('authorization', `Bearer ${key}`)).status).to.equal(404);
  });

  it('says the admin surface is off and how to turn it on; with it on, an unknown run’s page is a JSON 404', async () => {
    api = startApi();
    const off = await request(api.app).get('/api/admin/runs');
    expect([off.status, off.body.error]).to.deep.equal([404, 'route_not_found']);
    expect(off.body.detail).to.match(/admin surface is off/);
    expect(off.body.fix).to.match(/ADMIN_TOKEN/);
    await api.close();
    api = startApi({ ADMIN_TOKEN: 'admin-token-0123456789' });
    const admin = { authorization: 'Bearer admin-token-0123456789' };
    const page = await request(api.app).get(`/admin/runs/${crypto.randomUUID()}`).set(admin);
    expect(page.status).to.equal(404);
    expect(page.headers['content-type']).to.match(/^application\/json/);
    expect(page.body.error).to.equal('run_not_found');
  });

  it('answers crafted ids with 4xx, never 500', async () => {
    api = startApi({ ADMIN_TOKEN: 'admin-token-0123456789' });
    const { key } = await createAccount(api.deps.db);
    const admin = { authorization: 'Bearer admin-token-0123456789', 'content-type': 'application/json' };
    const cursor = Buffer.from(`2026-01-01T00:00:00.000Z|${'-'.repeat(36)}`).toString('base64url');
    const farCursor = Buffer.from(`+275760-09-13T00:00:00.000Z|${crypto.randomUUID()}`).toString('base64url');
    const answers = [
      await request(api.app).get(`/api/chats?cursor=${cursor}`).set('authorization', `Bearer ${key}`),
      await request(api.app).get(`/api/chats?cursor=${farCursor}`).set('authorization', `Bearer ${key}`),
      await request(api.app)
        .post(`/api/admin/webhook-events/${'-'.repeat(36)}/redeliver`)
        .set(admin),
      await request(api.app).get('/api/admin/accounts/%00/usage').set(admin),
      await request(api.app).get('/api/admin/accounts/a%00b/settings').set(admin),
    ];
    expect(answers.map((res) => res.status)).to.deep.equal([400, 400, 404, 404, 404]);
    for (const res of answers) expect(res.body.error).to.be.a('string');
  });

  it('keeps GET /metrics behind METRICS_TOKEN when it is set', async () => {
    api = startApi({ METRICS_TOKEN: 'metrics-token-0123456789' });
    const open = await request(api.app).get('/metrics');
    expect([open.status, open.body.error]).to.deep.equal([401, 'unauthorized']);
    expect((await request(api.app).get('/metrics').set('authorization', 'Bearer wrong-token-0123456789')).status).to.equal(401);
    const scraped = await request(api.app).get('/metrics').set('authorization', 'Bearer metrics-token-0123456789');
    expect(scraped.status).to.equal(200);
    expect(scraped.text).to.include('# HELP');
  });

  it('serves its pages over plain http without asking browsers to upgrade requests to https', async () => {
    api = startApi();
    const docs = await request(api.app).get('/docs');
    expect(docs.status).to.equal(200);
    expect(docs.headers['content-security-policy']).to.not.include('upgrade-insecure-requests');
  });
});
