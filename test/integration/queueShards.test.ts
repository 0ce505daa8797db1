import { expect } from 'chai';
import { runQueueName, shardOfRun } from '../../shared/infra/queue.js';
import { expectOneBudgetAcrossShards } from '../support/queueShards.js';
import calculateSlot from 'cluster-key-slot';

describe('queue shards (QUEUE_SHARDS) on one Redis', function () {
  this.timeout(90_000);

  it('keeps the one queue named "runs" by default, and gives each shard a hash tag in its own slice of the slots', () => {
    expect(runQueueName(0, 1, false)).to.equal('runs');
    for (const shards of [1, 3, 5, 16]) {
      const names = Array.from({ length: shards }, (_, i) => runQueueName(i, shards, true));
      names.forEach((name, i) => {
        const slot = calculateSlot(name);
        expect(name, name).to.match(/^\{runs-\d+(-\d+)?\}$/);
        expect(slot, `${name}'s slot`).to.be.within(Math.floor((i * 16_384) / shards), Math.floor(((i + 1) * 16_384) / shards) - 1);
      });
    }
  });

  it('puts a run on the same shard every time, and spreads runs over all of them', () => {
    const ids = Array.from({ length: 300 }, () => crypto.randomUUID());
    for (const id of ids) expect(shardOfRun(id, 4)).to.equal(shardOfRun(id, 4));
    const counts = [0, 1, 2, 3].map((shard) => ids.filter((id) => shardOfRun(id, 4) === shard).length);
    expect(Math.min(...counts), `runs per shard: ${counts.join('/')}`).to.be.above(30);
  });

  it('runs every shard’s jobs within one WORKER_CONCURRENCY budget, with no shard left waiting', async () => {
    await expectOneBudgetAcrossShards({}, 3);
  });
});
