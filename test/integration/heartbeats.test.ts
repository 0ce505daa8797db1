import { expect } from 'chai';
import { waitFor } from '../support/harness.js';
import { startRunOk, waitForRunStatus } from '../support/runs.js';
import { startStack, type Stack } from '../support/stack.js';

describe('heartbeats', function () {
  let stack: Stack;
  before(async () => {
    // Heartbeats every half of RUN_LOCK_MS: every 500 ms here; a run of 40 words at 100 ms lasts ~4 s.
    stack = await startStack({ RUN_LOCK_MS: '1000', LOCAL_MODEL_DELAY_MS: '100' });
  });
  after(() => stack.close());

  it('advance runs.heartbeat_at while a run runs, and stop once it ended', async () => {
    const prompt = Array.from({ length: 40 }, (_, i) => `beat${i}`).join(' ');
    const runId = await startRunOk(stack.api.app, stack.alice.key, { prompt });
    const beats = new Set<number>();
    const heartbeat = async () => (await stack.api.deps.db.run.findUniqueOrThrow({ where: { id: runId } })).heartbeatAt!.getTime();
    await waitFor(
      async () => {
        const run = await stack.api.deps.db.run.findUniqueOrThrow({ where: { id: runId } });
        if (run.status === 'running') beats.add(run.heartbeatAt!.getTime());
        return beats.size >= 3 || run.status === 'completed';
      },
      { what: 'three heartbeats during the run', timeoutMs: 20_000, intervalMs: 100 },
    );
    expect(beats.size, 'heartbeat_at advanced while the run ran').to.be.at.least(3);
    await waitForRunStatus(stack.api.deps, runId, ['completed']);
    const last = await heartbeat();
    await new Promise((resolve) => setTimeout(resolve, 1_500)); // three heartbeat intervals: none may come
    expect(await heartbeat(), 'no heartbeat after the run ended').to.equal(last);
  });
});
