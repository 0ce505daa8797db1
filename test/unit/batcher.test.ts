import { expect } from 'chai';
import { Batcher } from '../../shared/infra/batcher.js';

type Call = { group: string; key: string; value: number };

/** A handler whose batches stay open until released, recording what each batch held. */
function gatedHandler(fail: (items: Call[]) => boolean = () => false) {
  const batches: Call[][] = [];
  const gates: (() => void)[] = [];
  const handle = async (items: Call[]) => {
    batches.push(items);
    await new Promise<void>((resolve) => gates.push(resolve));
    if (fail(items)) throw new Error(`batch of ${items.length} failed`);
    return items.map((item) => item.value * 10);
  };
  const releaseAll = async () => {
    while (gates.length > 0) {
      gates.splice(0).forEach((open) => open());
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  return { batches, handle, releaseAll };
}

const call = (value: number, group = 'a', key = `k${value}`): Call => ({ group, key, value });

describe('Batcher', () => {
  it('sends a call at once when idle, and batches the calls that arrive while one is in flight', async () => {
    const { batches, handle, releaseAll } = gatedHandler();
    const batcher = new Batcher(handle, { maxBatch: 10, concurrency: 1 });
    const first = batcher.submit(call(1));
    expect(batches).to.deep.equal([[call(1)]]);
    const rest = [2, 3, 4].map((value) => batcher.submit(call(value)));
    await releaseAll();
    expect(await Promise.all([first, ...rest])).to.deep.equal([10, 20, 30, 40]);
    expect(batches).to.deep.equal([[call(1)], [call(2), call(3), call(4)]]);
  });

  it('keeps groups apart, keeps one key per batch, and caps the batch size', async () => {
    const { batches, handle, releaseAll } = gatedHandler();
    const batcher = new Batcher(handle, { maxBatch: 2, concurrency: 1, group: (c) => c.group, key: (c) => c.key });
    const answers = [call(1, 'a'), call(2, 'b'), call(3, 'a'), call(4, 'a', 'k3'), call(5, 'a'), call(6, 'b')].map((c) => batcher.submit(c));
    await releaseAll();
    expect(await Promise.all(answers)).to.deep.equal([10, 20, 30, 40, 50, 60]);
    expect(batches.map((batch) => batch.map((c) => c.value))).to.deep.equal([[1], [2], [3, 5], [6], [4]]);
  });

  it('runs up to `concurrency` batches of a group at once', async () => {
    const { batches, handle, releaseAll } = gatedHandler();
    const batcher = new Batcher(handle, { maxBatch: 10, concurrency: 2 });
    const answers = [1, 2, 3, 4].map((value) => batcher.submit(call(value)));
    expect(batches.map((batch) => batch.map((c) => c.value))).to.deep.equal([[1], [2]]);
    await releaseAll();
    await Promise.all(answers);
    expect(batches.map((batch) => batch.map((c) => c.value))).to.deep.equal([[1], [2], [3, 4]]);
  });

  it('when a batch fails, tries each item alone so only the bad one fails', async () => {
    const { batches, handle, releaseAll } = gatedHandler((items) => items.some((item) => item.value === 3));
    const batcher = new Batcher(handle, { maxBatch: 10, concurrency: 1 });
    const answers = [1, 2, 3, 4].map((value) => batcher.submit(call(value)).catch((err: Error) => err.message));
    await releaseAll();
    expect(await Promise.all(answers)).to.deep.equal([10, 20, 'batch of 1 failed', 40]);
    expect(batches.map((batch) => batch.map((c) => c.value))).to.deep.equal([[1], [2, 3, 4], [2], [3], [4]]);
  });
});
