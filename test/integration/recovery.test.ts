import { expect } from 'chai';
import request from 'supertest';
import { sweepStaleRuns } from '../../worker/fleet/sweep.js';
import { cleanupRun } from '../../shared/runs/compensations.js';
import { loseRedisData, startApi, startWorker, sweepDepsFor, waitFor, type ApiHarness } from '../support/harness.js';
import { createAccount, createEphemeralKey, type TestAccount } from '../support/factories.js';
import { startRunOk, waitForRunStatus } from '../support/runs.js';
import { startStack, type Stack } from '../support/stack.js';

const ADMIN_TOKEN = 'admin-token-for-tests-0123456789';

describe('replay and the stale-run sweep', () => {
  let stack: Stack;
  let api: ApiHarness;
  let alice: TestAccount;

  before(async () => {
    stack = await startStack({ ADMIN_TOKEN });
    ({ api, alice } = stack);
  });
  after(() => stack.close());

  // Admin POSTs are JSON, even without a body (a cross-site form cannot send that).
  const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };
  const db = () => api.deps.db;

  async function failedRun(prompt: string) {
    const runId = await startRunOk(api.app, alice.key, { prompt, model: 'openai/gpt-4o' });
    await waitForRunStatus(api.deps, runId, ['failed']);
    await waitFor(() => db().cleanupRecord.count({ where: { runId } }));
    return runId;
  }

  async function expectReplayedToCompletion(runId: string) {
    const run = await waitForRunStatus(api.deps, runId, ['completed']);
    expect(run.episode).to.equal(1);
    expect(run.errorCode).to.equal(null);
    const attempts = await db().runAttempt.findMany({ where: { runId }, orderBy: { attempt: 'asc' } });
    expect(
      attempts.map((a) => [a.attempt, a.status]),
      'earlier attempts are kept',
    ).to.deep.equal([
      [1, 'failed'],
      [2, 'completed'],
    ]);
    const keys = await db().apiKey.findMany({ where: { runId }, orderBy: { createdAt: 'asc' } });
    expect(keys, 'a fresh ephemeral key for the replay').to.have.length(2);
    await waitFor(() => db().cleanupRecord.count({ where: { runId, episode: 1 } }));
    expect(await db().cleanupRecord.count({ where: { runId } }), 'one cleanup per episode').to.equal(2);
    expect(await db().apiKey.count({ where: { runId, revokedAt: null } })).to.equal(0);
    expect(await db().openRun.count({ where: { runId } }), 'closed again by the replay’s cleanup').to.equal(0);
    const session = await db().session.findUniqueOrThrow({ where: { id: run.sessionId } });
    expect(session.status).to.equal('closed');
  }

  it('replays a failed run as a new attempt of the same runId, with a fresh key and the history kept', async () => {
    const runId = await failedRun(`bad once [[fail-once:400:${Date.now()}]]`);
    const res = await request(api.app).post(`/api/admin/runs/${runId}/replay`).set(admin);
    expect(res.status).to.equal(202);
    expect(res.body).to.include({ runId, status: 'queued' });
    await expectReplayedToCompletion(runId);
  });

  it('treats a retry of the failed job (what Bull Board’s retry button does) exactly like a replay', async () => {
    const runId = await failedRun(`bad once [[fail-once:400:bb-${Date.now()}]]`);
    const job = await api.deps.runQueues.forRun(runId).getJob(runId);
    expect(await job!.getState()).to.equal('failed');
    await job!.retry('failed');
    await expectReplayedToCompletion(runId);
  });

  it('refuses to replay a run that is not terminal, with 409', async () => {
    const idle = startApi({ ADMIN_TOKEN });
    try {
      const bob = await createAccount(idle.deps.db);
      const runId = await startRunOk(idle.app, bob.key, { prompt: 'waiting' });
      const res = await request(idle.app).post(`/api/admin/runs/${runId}/replay`).set(admin);
      expect(res.status).to.equal(409);
      expect(res.body.error).to.equal('run_not_terminal');
    } finally {
      await idle.close();
    }
  });

  it('replays failed runs in bulk with filters, and lists them without replaying on dryRun', async () => {
    const tag = Date.now();
    const runIds = [await failedRun(`bulk a [[fail-once:400:a${tag}]]`), await failedRun(`bulk b [[fail-once:400:b${tag}]]`)];
    const body = { status: 'failed', accountId: alice.accountId, model: 'openai/gpt-4o', since: new Date(Date.now() - 60_000).toISOString() };
    const dry = await request(api.app)
      .post('/api/admin/runs/replay')
      .set(admin)
      .send({ ...body, dryRun: true });
    expect(dry.status).to.equal(200);
    expect(dry.body.dryRun).to.equal(true);
    expect(dry.body.runs.map((r: { runId: string }) => r.runId)).to.include.members(runIds);
    // The same filters as the CLI: since/until as a duration back from now.
    const asDurations = await request(api.app)
      .post('/api/admin/runs/replay')
      .set(admin)
      .send({ ...body, since: '2h', dryRun: true });
    expect(asDurations.status).to.equal(200);
    expect(asDurations.body.runs.map((r: { runId: string }) => r.runId)).to.include.members(runIds);
    const notYet = await request(api.app)
      .post('/api/admin/runs/replay')
      .set(admin)
      .send({ ...body, since: '2h', until: '1h', dryRun: true });
    expect(notYet.body.runs, 'none failed between 2 h and 1 h ago').to.deep.equal([]);
    const listed = await request(api.app).get('/api/admin/runs').query({ since: '10m', status: 'failed' }).set(admin);
    expect(listed.body.runs.map((r: { runId: string }) => r.runId)).to.include.members(runIds);
    const bad = await request(api.app).post('/api/admin/runs/replay').set(admin).send({ status: 'failed', since: 'yesterday' });
    expect([bad.status, bad.body.error]).to.deep.equal([400, 'validation_failed']);
    expect((await db().run.findUniqueOrThrow({ where: { id: runIds[0]! } })).status).to.equal('failed');
    const real = await request(api.app).post('/api/admin/runs/replay').set(admin).send(body);
    expect(real.body.runs.filter((r: { replayed: boolean }) => r.replayed).map((r: { runId: string }) => r.runId)).to.include.members(runIds);
    await Promise.all(runIds.map((runId) => waitForRunStatus(api.deps, runId, ['completed'])));
  });

  it('keeps the admin surface behind auth: 401 without credentials, 403 for a key without the admin scope', async () => {
    expect((await request(api.app).post('/api/admin/runs/replay').send({ status: 'failed' })).status).to.equal(401);
    const res = await request(api.app).post('/api/admin/runs/replay').set(alice.auth).send({ status: 'failed' });
    expect(res.status).to.equal(403);
    expect(res.body.error).to.equal('scope_denied');
  });

  describe('the sweep', () => {
    it('re-queues a queued run whose job vanished (Redis lost it), with a fresh key, and the run completes', async () => {
      const idle = startApi();
      const sweepDeps = sweepDepsFor(idle, { RUN_STALE_AFTER_MS: '1000' });
      try {
        const bob = await createAccount(idle.deps.db);
        const runId = await startRunOk(idle.app, bob.key, { prompt: 'lost and found' });
        const oldKey = await idle.deps.db.apiKey.findFirstOrThrow({ where: { runId } });
        await loseRedisData(idle);
        await idle.deps.db.run.update({ where: { id: runId }, data: { heartbeatAt: new Date(Date.now() - 5_000) } });
        // The sweep covers the whole database, which other tests share: assert on this run.
        const report = await sweepStaleRuns(sweepDeps);
        expect(report.requeued).to.be.at.least(1);
        expect(await idle.deps.runQueues.forRun(runId).getJob(runId)).to.exist;
        expect((await idle.deps.db.apiKey.findUniqueOrThrow({ where: { id: oldKey.id } })).revokedAt).to.be.instanceOf(Date);
        expect(await idle.deps.db.apiKey.count({ where: { runId, revokedAt: null } })).to.equal(1);
        const sweeper = await startWorker(idle.prefix);
        try {
          await waitForRunStatus(idle.deps, runId, ['completed']);
        } finally {
          await sweeper.close(1_000);
        }
      } finally {
        await idle.close();
      }
    });

    it('fails a running run with no heartbeat and no live job once its attempts are spent, and cleans it up', async () => {
      const idle = startApi();
      const sweepDeps = sweepDepsFor(idle, { RUN_STALE_AFTER_MS: '1000', RUN_MAX_ATTEMPTS: '1' });
      try {
        const bob = await createAccount(idle.deps.db);
        const runId = await startRunOk(idle.app, bob.key, { prompt: 'dead worker' });
        await loseRedisData(idle);
        await idle.deps.db.run.update({ where: { id: runId }, data: { status: 'running', attempt: 1, heartbeatAt: new Date(Date.now() - 5_000) } });
        const report = await sweepStaleRuns(sweepDeps);
        expect(report.failed).to.be.at.least(1);
        const run = await idle.deps.db.run.findUniqueOrThrow({ where: { id: runId } });
        expect(run).to.include({ status: 'failed', errorCode: 'stalled' });
        expect(await idle.deps.db.cleanupRecord.count({ where: { runId, reason: 'stalled' } })).to.equal(1);
        expect(await idle.deps.db.openRun.count({ where: { runId } })).to.equal(0);
        expect(await idle.deps.db.apiKey.count({ where: { runId, revokedAt: null } })).to.equal(0);
      } finally {
        await idle.close();
      }
    });

    it('never cleans up a run that is not terminal (one a replay reopened after the sweep read it)', async () => {
      const idle = startApi();
      try {
        const bob = await createAccount(idle.deps.db);
        const runId = await startRunOk(idle.app, bob.key, { prompt: 'reopened' });
        const outcome = await cleanupRun(idle.deps.sql, idle.deps.logger, runId, 'failed');
        expect(outcome.performed).to.equal(false);
        expect(await idle.deps.db.apiKey.count({ where: { runId, revokedAt: null } }), 'its key still works').to.equal(1);
        expect(await idle.deps.db.openRun.count({ where: { runId } }), 'still open').to.equal(1);
        expect(await idle.deps.db.cleanupRecord.count({ where: { runId } })).to.equal(0);
      } finally {
        await idle.close();
      }
    });

    it('cleans up an ended run that an older release left without its cleanup, exactly once, and deletes expired ephemeral keys', async () => {
      const idle = startApi();
      const sweepDeps = sweepDepsFor(idle, {});
      try {
        const bob = await createAccount(idle.deps.db);
        const runId = await startRunOk(idle.app, bob.key, { prompt: 'orphan' });
        // As an older release's worker left it: terminal (its write also stamps heartbeat_at), no cleanup.
        const endedAt = new Date(Date.now() - 10_000);
        await idle.deps.db.run.update({ where: { id: runId }, data: { status: 'completed', finishedAt: endedAt, heartbeatAt: endedAt } });
        await createEphemeralKey(idle.deps.db, bob.accountId, runId, -1_000);
        const first = await sweepStaleRuns(sweepDeps);
        await sweepStaleRuns(sweepDeps);
        expect(first.cleanedUp).to.be.at.least(1);
        expect(first.expiredKeysDeleted).to.be.at.least(1);
        expect(await idle.deps.db.cleanupRecord.count({ where: { runId } })).to.equal(1);
        expect(await idle.deps.db.apiKey.count({ where: { runId, revokedAt: null } })).to.equal(0);
        expect(await idle.deps.db.openRun.count({ where: { runId } }), 'no longer in the sweep’s work list').to.equal(0);
      } finally {
        await idle.close();
      }
    });
  });
});
