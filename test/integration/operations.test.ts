import { expect } from 'chai';
import request from 'supertest';
import { startApi, spawnWorker, waitFor, workerReady, type ApiHarness } from '../support/harness.js';
import { createAccount } from '../support/factories.js';
import { startRunOk, waitForRunStatus } from '../support/runs.js';

const ADMIN_TOKEN = 'ops-admin-token-0123456789abcdef';

describe('operations surface', () => {
  let api: ApiHarness;
  before(() => {
    api = startApi({ ADMIN_TOKEN });
  });
  after(() => api.close());

  it('serves /openapi.json generated from the validation schemas, and /docs rendering it with the error catalogue', async () => {
    const doc = await request(api.app).get('/openapi.json');
    expect(doc.status).to.equal(200);
    expect(doc.body.openapi).to.equal('3.1.0');
    expect(doc.body.paths).to.include.keys(
      '/api/chat/runs',
      '/api/chat/runs/{runId}',
      '/api/chat/runs/{runId}/stream',
      '/api/chat/runs/{runId}/cancel',
      '/api/chats/{chatId}/messages',
      '/api/admin/runs/replay',
    );
    const startRun = doc.body.components.schemas.StartRunRequest;
    expect(startRun.properties).to.include.keys('prompt', 'messages', 'model', 'system', 'maxOutputTokens', 'title', 'metadata');
    expect(startRun.additionalProperties).to.equal(false);
    const docs = await request(api.app).get('/docs');
    expect(docs.status).to.equal(200);
    expect(docs.text).to.include('swagger-ui').and.include('id="error-queue_unavailable"');
    expect((await request(api.app).get('/docs/assets/swagger-ui-bundle.js')).status).to.equal(200);
  });

  it('exposes Prometheus metrics, including queue depth by state', async () => {
    const alice = await createAccount(api.deps.db);
    await startRunOk(api.app, alice.key, { prompt: 'count me' });
    const res = await request(api.app).get('/metrics');
    expect(res.status).to.equal(200);
    expect(res.text).to.include('runyard_runs_started_total{model="local/echo",process="api"} ');
    // Released by the fair scheduler with its place in line as the job's BullMQ priority.
    expect(res.text).to.match(/runyard_queue_jobs\{queue="runs",state="prioritized",process="api"\} [1-9]/);
    expect(res.text).to.include('runyard_active_streams');
    expect(res.text).to.include('runyard_process_resident_memory_bytes');
  });

  describe('admin auth', () => {
    it('lets ADMIN_TOKEN in as Bearer or as the Basic password, and an admin-scoped key', async () => {
      expect((await request(api.app).get('/admin/queues').set('authorization', `Bearer ${ADMIN_TOKEN}`)).status).to.equal(200);
      const basic = Buffer.from(`oncall:${ADMIN_TOKEN}`).toString('base64');
      expect((await request(api.app).get('/admin/queues').set('authorization', `Basic ${basic}`)).status).to.equal(200);
      const admin = await createAccount(api.deps.db, ['admin']);
      expect((await request(api.app).get('/admin/queues').set(admin.auth)).status).to.equal(200);
    });

    it('asks a browser for credentials, and refuses a wrong token or a key without the admin scope', async () => {
      const none = await request(api.app).get('/admin/queues');
      expect(none.status).to.equal(401);
      expect(none.headers['www-authenticate']).to.match(/^Basic realm="runyard admin"/);
      const wrong = Buffer.from(`oncall:not-the-token`).toString('base64');
      expect((await request(api.app).get('/admin/queues').set('authorization', `Basic ${wrong}`)).status).to.equal(401);
      const user = await createAccount(api.deps.db);
      expect((await request(api.app).get('/admin/queues').set(user.auth)).status).to.equal(403);
    });

    it('answers 404 on the whole admin surface when ADMIN_TOKEN is unset and no admin key is used', async () => {
      const off = startApi();
      try {
        const user = await createAccount(off.deps.db);
        for (const path of ['/admin/queues', '/api/admin/runs/replay']) {
          expect((await request(off.app).get(path)).status, path).to.equal(404);
          const hidden = await request(off.app).post(path).set(user.auth);
          expect(hidden.status, path).to.equal(404);
          expect(hidden.body.error).to.equal('route_not_found');
          expect(hidden.body.detail, 'names the full path and says why').to.equal(`No route POST ${path}: the admin surface is off on this server.`);
        }
        const admin = await createAccount(off.deps.db, ['admin']);
        expect((await request(off.app).get('/admin/queues').set(admin.auth)).status).to.equal(200);
      } finally {
        await off.close();
      }
    });

    it('shows no secret in the job data Bull Board serves', async () => {
      const alice = await createAccount(api.deps.db);
      const runId = await startRunOk(api.app, alice.key, { prompt: 'secret?' });
      const res = await request(api.app)
        .get('/admin/queues/api/queues?activeQueue=runs&status=prioritized&page=1')
        .set('authorization', `Bearer ${ADMIN_TOKEN}`);
      expect(res.status).to.equal(200);
      expect(res.text).to.include(runId);
      expect(res.text).to.not.match(/ry_(ek|sk)_/);
    });
  });

  it('serves a worker’s metrics and health on WORKER_METRICS_PORT', async function () {
    this.timeout(60_000);
    const worker = spawnWorker(api.prefix, { WORKER_METRICS_PORT: '0' });
    try {
      await workerReady(worker);
      // Port 0: the worker logs the port the system gave it.
      const port = await waitFor(
        () => {
          const line = worker
            .output()
            .split('\n')
            .find((text) => text.includes('"metrics server listening"'));
          return line ? (JSON.parse(line) as { port: number }).port : null;
        },
        { what: 'the metrics server to listen' },
      );
      const alice = await createAccount(api.deps.db);
      const runId = await startRunOk(api.app, alice.key, { prompt: 'measure me' });
      await waitForRunStatus(api.deps, runId, ['completed']);
      const metrics = await waitFor(async () => {
        const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        return text.includes('runyard_runs_finished_total{status="completed"') ? text : null;
      });
      expect(metrics).to.include('runyard_time_to_first_token_seconds_bucket');
      expect(metrics).to.include('runyard_run_duration_seconds_bucket');
      expect(metrics).to.include('runyard_run_retries_total');
      expect(metrics).to.include('runyard_cleanup_failures_total');
      expect(metrics).to.include('runyard_run_stalls_total');
      expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).to.equal(200);
    } finally {
      worker.child.kill('SIGTERM');
      await worker.stopped;
    }
  });
});
