import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { closeRedis, createRedis, type RedisClient } from '../../shared/infra/redis.js';
import { ModelRateLimiter, PAUSE_RECHECK_MS } from '../../shared/flow/modelRateLimits.js';
import { testConfig } from '../support/testConfig.js';
import { waitFor } from '../support/harness.js';

/** Two workers' limiters on one prefix, each with its own connections, as two processes would have. */
describe('model pauses across workers', () => {
  const prefix = `pauses-${randomUUID()}`;
  const model = 'openai/gpt-4o-mini';
  const connections: RedisClient[] = [];
  const limiter = async (pauseRecheckMs = PAUSE_RECHECK_MS) => {
    const [redis, subscriber] = [createRedis(testConfig(), 'worker'), createRedis(testConfig(), 'subscriber')];
    connections.push(redis, subscriber);
    const limiter = new ModelRateLimiter(redis, prefix, [], 60_000, pauseRecheckMs);
    limiter.listen(subscriber, (err) => {
      throw err;
    });
    await waitFor(async () => (await redis.pubsub('NUMSUB', `${prefix}:model-paused`))[1] === connections.length / 2, { what: 'the subscriptions' });
    return limiter;
  };
  after(async () => {
    await connections[0]?.del(`${prefix}:{ratelimit:${model}}:paused`);
    await Promise.all(connections.map((c) => closeRedis(c)));
  });

  it('pauses a model for a worker that has just found it free, by the message, without waiting for its next read', async () => {
    // The second worker would not read the key again for a minute: only the message can tell it.
    const [first, second] = [await limiter(), await limiter(60_000)];
    expect(await second.reserve(model, 10)).to.deep.equal({ waitMs: 0 });
    await first.pause(model, 5_000);
    const capacity = await waitFor(
      async () => {
        const found = await second.reserve(model, 10);
        return 'reason' in found ? found : null;
      },
      { timeoutMs: 10_000, intervalMs: 5, what: 'the pause to reach the second worker by its message' },
    );
    expect(capacity.reason).to.equal('paused');
    expect(capacity.waitMs).to.be.within(4_000, 5_000);
  });

  it('still learns of a pause whose message it missed, within the recheck time', async () => {
    const third = await limiter();
    await connections[0]!.del(`${prefix}:{ratelimit:${model}}:paused`);
    expect(await third.reserve(model, 10)).to.deep.equal({ waitMs: 0 });
    // Set behind the workers' backs: no message.
    await connections[0]!.set(`${prefix}:{ratelimit:${model}}:paused`, '1', 'PX', 5_000);
    const started = Date.now();
    await waitFor(async () => 'reason' in (await third.reserve(model, 10)), { timeoutMs: 5_000, intervalMs: 5, what: 'the pause to be read' });
    expect(Date.now() - started, 'ms').to.be.below(PAUSE_RECHECK_MS + 1_000);
  });
});

describe('model rate limits: the tokens a call counts', () => {
  it('estimates a call’s tokens only for a model with a rule, and counts them against its tokens per minute', async () => {
    const redis = createRedis(testConfig(), 'worker');
    const prefix = `tpm-${randomUUID()}`;
    try {
      const limiter = new ModelRateLimiter(redis, prefix, [{ pattern: 'openai/gpt-4o-mini', rpm: null, tpm: 1_000 }], 60_000);
      let estimates = 0;
      const estimate = (tokens: number) => () => {
        estimates++;
        return tokens;
      };
      expect(await limiter.reserve('anthropic/claude-haiku-4-5', estimate(5_000))).to.deep.equal({ waitMs: 0 });
      expect(estimates, 'no rule: nothing to estimate').to.equal(0);
      expect(await limiter.reserve('openai/gpt-4o-mini', estimate(800))).to.deep.equal({ waitMs: 0 });
      const refused = await limiter.reserve('openai/gpt-4o-mini', estimate(300));
      expect(estimates).to.equal(2);
      expect(refused).to.include({ reason: 'tpm' });
      expect((refused as { waitMs: number }).waitMs).to.be.greaterThan(0);
    } finally {
      await redis.del(`${prefix}:{ratelimit:openai/gpt-4o-mini}:calls`);
      await closeRedis(redis);
    }
  });
});
