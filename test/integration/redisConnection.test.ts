import { expect } from 'chai';
import { closeRedis, createRedis, isRedisUsable } from '../../shared/infra/redis.js';
import { testConfig } from '../support/testConfig.js';

describe('the api’s Redis connection', () => {
  it('is usable as soon as a just-created connection finishes connecting', async () => {
    const redis = createRedis(testConfig(), 'producer');
    try {
      expect(redis.status, 'still connecting when the first request arrives').to.not.equal('ready');
      expect(await isRedisUsable(redis, 5_000)).to.equal(true);
      expect(await redis.ping()).to.equal('PONG');
    } finally {
      await closeRedis(redis);
    }
  });

  it('answers false without waiting out the bound when Redis refuses the connection', async () => {
    const redis = createRedis({ REDIS_URL: 'redis://127.0.0.1:1', REDIS_CLUSTER_NODES: [] }, 'producer');
    try {
      const started = Date.now();
      expect(await isRedisUsable(redis, 5_000)).to.equal(false);
      expect(Date.now() - started, 'the refusal ends the wait').to.be.below(4_000);
      await new Promise((resolve) => setTimeout(resolve, 50));
      const again = Date.now();
      expect(await isRedisUsable(redis, 5_000), 'while reconnecting').to.equal(false);
      expect(Date.now() - again).to.be.below(4_000);
    } finally {
      await closeRedis(redis);
    }
  });
});
