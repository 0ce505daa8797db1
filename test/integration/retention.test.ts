import { expect } from 'chai';
import { loadConfig } from '../../shared/infra/config.js';
import { testEnv } from '../support/testConfig.js';
import { HISTORY_TABLES, pruneExpiredChats } from '../../shared/runs/retention.js';
import { createAccount } from '../support/factories.js';
import request from 'supertest';
import { waitFor } from '../support/harness.js';
import { startParkedRun, startRunOk, waitForRunStatus } from '../support/runs.js';
import { startStack, type Stack } from '../support/stack.js';

const ADMIN_TOKEN = 'retention-admin-token-0123456789';

describe('retention: idle chats older than their account’s retention are erased (SPEC section 17)', function () {
  this.timeout(60_000);
  let stack: Stack;
  before(async () => {
    stack = await startStack({ RETENTION_DAYS: '30', ADMIN_TOKEN });
  });
  after(() => stack.close());

  const chatOf = async (key: string, prompt: string) => {
    const runId = await startRunOk(stack.api.app, key, { prompt });
    return (await waitForRunStatus(stack.api.deps, runId, ['completed'])).chatId;
  };
  /** Moves a chat's last activity, and its runs' ends, `days` into the past. */
  const age = async (chatId: string, days: number) => {
    const then = new Date(Date.now() - days * 86_400_000);
    await stack.api.deps.db.chat.update({ where: { id: chatId }, data: { lastActivityAt: then } });
    await stack.api.deps.db.$executeRaw`UPDATE runs SET finished_at = ${then} WHERE chat_id = ${chatId}::uuid AND finished_at IS NOT NULL`;
  };
  const exists = async (chatId: string) => (await stack.api.deps.db.chat.count({ where: { id: chatId } })) === 1;

  it('erases an idle chat past RETENTION_DAYS whole; keeps a recent one, a busy one, and one whose account keeps history longer or shorter', async () => {
    const alice = await createAccount(stack.api.deps.db);
    const old = await chatOf(alice.key, 'long ago');
    const recent = await chatOf(alice.key, 'yesterday');
    const busy = (await startParkedRun(stack.api.app, stack.api.deps, alice.key)).chatId;
    const tenDays = await chatOf(alice.key, 'ten days ago');
    await age(old, 40);
    await age(recent, 1);
    await age(busy, 40);
    await age(tenDays, 10);
    const bob = await createAccount(stack.api.deps.db);
    await stack.api.deps.db.account.update({ where: { id: bob.accountId }, data: { retentionDays: 7 } });
    const bobsTenDays = await chatOf(bob.key, 'ten days ago, kept a week');
    await age(bobsTenDays, 10);

    const pruneStarted = new Date();
    const report = await pruneExpiredChats({
      db: stack.api.deps.db,
      redis: stack.api.deps.redis,
      admission: stack.api.deps.admission,
      config: stack.api.deps.config,
    });
    // The workers' own retention job may have erased some first: what counts is what is left.
    expect(report.chatsDeleted).to.be.at.most(2);
    if (report.chatsDeleted > 0) {
      // The space comes back: every history table was vacuumed after the deletions (autovacuum may be off).
      expect(report.vacuumMs).to.be.a('number');
      await waitFor(
        async () => {
          const rows = await stack.api.deps.db.$queryRaw<{ relname: string; last_vacuum: Date | null }[]>`
            SELECT relname::text, last_vacuum FROM pg_stat_user_tables WHERE relname = ANY(${[...HISTORY_TABLES]})`;
          return rows.length === HISTORY_TABLES.length && rows.every((row) => row.last_vacuum && row.last_vacuum >= pruneStarted);
        },
        { what: 'every history table vacuumed after the prune', timeoutMs: 10_000 },
      );
    }
    expect({
      old: await exists(old),
      recent: await exists(recent),
      busy: await exists(busy),
      tenDays: await exists(tenDays),
      bobsTenDays: await exists(bobsTenDays),
    }).to.deep.equal({
      old: false,
      recent: true,
      busy: true,
      tenDays: true,
      bobsTenDays: false,
    });
    expect(await stack.api.deps.db.message.count({ where: { chatId: { in: [old, bobsTenDays] } } }), 'nothing of them left').to.equal(0);
    const again = await pruneExpiredChats({
      db: stack.api.deps.db,
      redis: stack.api.deps.redis,
      admission: stack.api.deps.admission,
      config: stack.api.deps.config,
    });
    expect(again.chatsDeleted, 'a second pass finds nothing of these').to.equal(0);
  });

  it('keeps every chat of a deployment without RETENTION_DAYS (no default), but an account’s own period still applies', async () => {
    const config = { ...stack.api.deps.config, RETENTION_DAYS: undefined };
    const erin = await createAccount(stack.api.deps.db);
    const ancient = await chatOf(erin.key, 'ten years ago');
    await age(ancient, 3650);
    const frank = await createAccount(stack.api.deps.db);
    await stack.api.deps.db.account.update({ where: { id: frank.accountId }, data: { retentionDays: 7 } });
    const franks = await chatOf(frank.key, 'ten days ago, kept a week');
    await age(franks, 10);
    await pruneExpiredChats({ db: stack.api.deps.db, redis: stack.api.deps.redis, admission: stack.api.deps.admission, config });
    expect(await exists(ancient), 'no period set: kept').to.equal(true);
    expect(await exists(franks), 'its account’s own period').to.equal(false);
    expect(loadConfig({}, testEnv()).RETENTION_DAYS, 'no default').to.equal(undefined);
  });

  it('erases all of an account’s data (admin API): keys refused, active run interrupted, nothing of it left in Postgres or Redis; others untouched', async () => {
    const { db, redis } = stack.api.deps;
    const carol = await createAccount(db);
    const done = await startRunOk(stack.api.app, carol.key, { prompt: 'remember me' });
    await waitForRunStatus(stack.api.deps, done, ['completed']);
    const parked = await startParkedRun(stack.api.app, stack.api.deps, carol.key);
    const queued = await request(stack.api.app).post(`/api/chats/${parked.chatId}/messages`).set(carol.auth).send({ prompt: 'later' });
    expect(queued.body.queued).to.equal(true);
    const idempotent = await request(stack.api.app)
      .post('/api/chat/runs')
      .set({ ...carol.auth, 'idempotency-key': 'once' })
      .send({ prompt: 'once' });
    expect(idempotent.status).to.equal(202);
    const dave = await createAccount(db);
    const davesRun = await startRunOk(stack.api.app, dave.key, { prompt: 'keep me' });

    const erased = await request(stack.api.app).delete(`/api/admin/accounts/${carol.accountId}`).set('authorization', `Bearer ${ADMIN_TOKEN}`);
    expect(erased.status).to.equal(202);
    expect(erased.body).to.include({ accountId: carol.accountId, deleted: true, chats: 3, runs: 3 });
    const runIds = [done, parked.runId, idempotent.body.runId as string];
    const left = {
      accounts: await db.account.count({ where: { id: carol.accountId } }),
      keys: await db.apiKey.count({ where: { accountId: carol.accountId } }),
      sessions: await db.session.count({ where: { accountId: carol.accountId } }),
      chats: await db.chat.count({ where: { accountId: carol.accountId } }),
      runs: await db.run.count({ where: { accountId: carol.accountId } }),
      messages: await db.message.count({ where: { runId: { in: runIds } } }),
      queued: await db.queuedMessage.count({ where: { accountId: carol.accountId } }),
      steps: await db.runStep.count({ where: { runId: { in: runIds } } }),
      attempts: await db.runAttempt.count({ where: { runId: { in: runIds } } }),
      cleanups: await db.cleanupRecord.count({ where: { runId: { in: runIds } } }),
      usage: await db.accountUsage.count({ where: { accountId: carol.accountId } }),
      activeSlots: await db.accountActiveRuns.count({ where: { accountId: carol.accountId } }),
    };
    expect(left).to.deep.equal({
      accounts: 0,
      keys: 0,
      sessions: 0,
      chats: 0,
      runs: 0,
      messages: 0,
      queued: 0,
      steps: 0,
      attempts: 0,
      cleanups: 0,
      usage: 0,
      activeSlots: 0,
    });
    const redisLeft = [
      ...(await Promise.all(runIds.map((id) => redis.keys(`${stack.api.prefix}*${id}*`)))).flat(),
      ...(await redis.keys(`${stack.api.prefix}:idempotency:{${carol.accountId}}:*`)),
    ];
    expect(redisLeft).to.deep.equal([]);
    const flow = `${stack.api.prefix}:{flow}:`;
    const scheduler = {
      settings: await redis.hexists(`${flow}settings`, carol.accountId),
      last: await redis.hexists(`${flow}last`, carol.accountId),
      capped: await redis.hexists(`${flow}capped`, carol.accountId),
      inLine: await redis.zscore(`${flow}accounts`, carol.accountId),
      keys: (await redis.keys(`${flow}*${carol.accountId}*`)).length,
    };
    expect(scheduler, 'the fair scheduler forgot the account').to.deep.equal({ settings: 0, last: 0, capped: 0, inLine: null, keys: 0 });
    // Its key no longer works (the api's key cache forgets it within API_KEY_CACHE_MS); meanwhile a POST is refused, never a 5xx.
    const statuses: number[] = [];
    await waitFor(
      async () => {
        const res = await request(stack.api.app).post('/api/chat/runs').set(carol.auth).send({ prompt: 'am I still here?' });
        statuses.push(res.status);
        return res.status === 401;
      },
      { what: 'the key to be refused' },
    );
    expect(
      statuses.filter((status) => status >= 500),
      `answers: ${statuses.join(', ')}`,
    ).to.deep.equal([]);
    expect((await request(stack.api.app).delete(`/api/admin/accounts/${carol.accountId}`).set('authorization', `Bearer ${ADMIN_TOKEN}`)).status).to.equal(404);
    expect((await waitForRunStatus(stack.api.deps, davesRun, ['completed'])).accountId, 'another account untouched').to.equal(dave.accountId);
  });
});
