import { expect } from 'chai';
import { pruneExpiredChats } from '../../shared/runs/retention.js';
import { createAccount } from '../support/factories.js';
import { startParkedRun, startRunOk, waitForRunStatus } from '../support/runs.js';
import { startStack, type Stack } from '../support/stack.js';

describe('retention: idle chats older than their account’s retention are erased (SPEC section 17)', function () {
  this.timeout(60_000);
  let stack: Stack;
  before(async () => {
    stack = await startStack({ RETENTION_DAYS: '30' });
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

    const report = await pruneExpiredChats({
      db: stack.api.deps.db,
      redis: stack.api.deps.redis,
      runQueues: stack.api.deps.runQueues,
      config: stack.api.deps.config,
    });
    // The workers' own retention job may have erased some first: what counts is what is left.
    expect(report.chatsDeleted).to.be.at.most(2);
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
      runQueues: stack.api.deps.runQueues,
      config: stack.api.deps.config,
    });
    expect(again.chatsDeleted, 'a second pass finds nothing of these').to.equal(0);
  });
});
