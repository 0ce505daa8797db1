import { startApi, spawnWorker, workerReady, type ApiHarness, type WorkerProcess } from '../support/harness.js';
import { textOfParts } from '../../shared/stream/messageParts.js';
import { createAccount } from '../support/factories.js';
import { expect } from 'chai';
import { startRunOk } from '../support/runs.js';
import { assembledText, readSse } from '../support/sse.js';
import { startToolServer, type ToolServer } from '../support/toolServer.js';
import { expectEveryRunSettled, killRandomWorkers } from './support.js';

const words = (n: number) => Array.from({ length: n }, (_, i) => `w${i}`).join(' ');

describe('fault: workers killed with kill -9 under load', function () {
  this.timeout(240_000);
  let api: ApiHarness;
  let tools: ToolServer;
  const workers: WorkerProcess[] = [];
  const env: Record<string, string> = {
    RUN_LOCK_MS: '2000',
    LOCAL_MODEL_DELAY_MS: '40',
    WORKER_CONCURRENCY: '8',
    RUN_STALE_AFTER_MS: '4000',
    RUN_SWEEP_EVERY_MS: '1000',
    RUN_MAX_STALLS: '5',
    RUN_MAX_ATTEMPTS: '5',
  };

  before(async () => {
    tools = await startToolServer();
    // A tool slow enough that kills land while calls are in flight.
    tools.behave('slow_echo', (call) => ({ delayMs: 300, body: { output: { echoed: call.body.input } } }));
    env.TOOL_URL_ALLOWLIST = tools.url;
    api = startApi({ ACCOUNT_MAX_ACTIVE_RUNS: '1000', TOOL_URL_ALLOWLIST: tools.url });
  });
  after(async () => {
    for (const worker of workers) worker.child.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.stopped));
    await api.close();
    await tools.close();
  });

  it('3 workers, 100 runs, a random worker killed every 2 s and restarted: nothing is lost, every watched stream ends', async () => {
    for (let i = 0; i < 3; i++) workers.push(spawnWorker(api.prefix, env));
    await Promise.all(workers.map((w) => workerReady(w)));
    const alice = await createAccount(api.deps.db);
    // Every fourth run is an agent run: local/echo calls a slow server tool, then answers with its output.
    const slowEcho = { name: 'slow_echo', inputSchema: { type: 'object', properties: { n: { type: 'number' } } }, url: tools.toolUrl('slow_echo') };
    const bodyOf = (i: number) => (i % 4 === 1 ? { prompt: `call slow_echo {"n":${i}}`, tools: [slowEcho] } : { prompt: words(20 + (i % 30)) });
    const runIds = await Promise.all(Array.from({ length: 100 }, (_, i) => startRunOk(api.app, alice.key, bodyOf(i))));
    const toolRunIds = runIds.filter((_, i) => i % 4 === 1);
    // Every fifth run has a client watching it live, from before its first token to the end.
    const base = await api.url();
    const watched = runIds.filter((_, i) => i % 5 === 0);
    const streams = watched.map((runId) => readSse(`${base}/api/chat/runs/${runId}/stream`, { authorization: `Bearer ${alice.key}` }, { timeoutMs: 200_000 }));
    const kills = await killRandomWorkers(workers, () => spawnWorker(api.prefix, env), { everyMs: 2_000, forMs: 16_000 });
    await Promise.all(workers.map((w) => workerReady(w)));
    await expectEveryRunSettled(api.deps, runIds, 150_000);
    for (const [i, { events }] of (await Promise.all(streams)).entries()) {
      const run = await api.deps.db.run.findUniqueOrThrow({ where: { id: watched[i]! }, include: { messages: { where: { role: 'assistant' } } } });
      expect(events.at(-1)?.data, `the stream of run ${run.id} (${run.status}) ended`).to.equal('[DONE]');
      const statuses = events.slice(0, -1).map((e) => JSON.parse(e.data) as { type: string; data?: { status?: string } });
      expect(statuses.filter((c) => c.type === 'data-run-status').at(-1)?.data?.status).to.equal(run.status);
      if (run.status === 'completed') expect(assembledText(events)).to.equal(textOfParts(run.messages[0]!.parts as { type: string }[]));
    }
    for (const runId of toolRunIds) {
      const run = await api.deps.db.run.findUniqueOrThrow({ where: { id: runId } });
      const deliveries = tools.calls.filter((c) => c.body.runId === runId);
      if (run.status !== 'completed') continue;
      expect(deliveries.length, `tool run ${runId} called its tool`).to.be.at.least(1);
      expect(new Set(deliveries.map((c) => c.headers['webhook-id'])).size, `tool run ${runId}: every delivery of its one call has one webhook-id`).to.equal(1);
      const [answer] = await api.deps.db.message.findMany({ where: { runId, role: 'assistant' } });
      const toolParts = (answer!.parts as { type: string; state?: string }[]).filter((p) => p.type === 'tool-slow_echo');
      expect(toolParts.map((p) => p.state)).to.deep.equal(['output-available']);
    }
    const resent = toolRunIds.filter((runId) => tools.calls.filter((c) => c.body.runId === runId).length > 1).length;
    console.log(`      (${resent} of ${toolRunIds.length} tool calls were in flight at a kill and resent with their webhook-id)`);
    const completed = await api.deps.db.run.count({ where: { id: { in: runIds }, status: 'completed' } });
    console.log(`      (${kills} kills; ${completed} of 100 completed)`);
    expect(completed, 'killing workers loses no run: nearly all complete').to.be.at.least(95);
    const failures = await api.deps.db.run.findMany({ where: { id: { in: runIds }, status: 'failed' }, select: { errorCode: true } });
    expect(
      failures.filter((run) => run.errorCode !== 'stalled'),
      'a failure here is a run that stalled past RUN_MAX_STALLS, nothing else',
    ).to.deep.equal([]);
  });
});
