import { expect } from 'chai';
import type { ApiDeps } from '../../api/deps.js';
import { waitFor, type ApiHarness, type WorkerProcess } from '../support/harness.js';
import { postRun } from '../support/runs.js';

/** The fault suite's end state: every run terminal, one answer per completed run, nothing left provisioned. */
export async function expectNothingLost(deps: ApiDeps, runIds: string[]) {
  const runs = await deps.db.run.findMany({ where: { id: { in: runIds } } });
  expect(runs).to.have.length(runIds.length);
  const notTerminal = runs.filter((run) => !['completed', 'failed', 'cancelled'].includes(run.status));
  expect(
    notTerminal.map((r) => `${r.id}:${r.status}`),
    'every run terminal',
  ).to.deep.equal([]);
  for (const run of runs.filter((r) => r.status === 'completed')) {
    const answers = await deps.db.message.findMany({ where: { runId: run.id, role: 'assistant' } });
    expect(
      answers.map((m) => m.attempt),
      `run ${run.id}: one answer, from its final attempt`,
    ).to.deep.equal([run.attempt]);
  }
  const liveKeys = await deps.db.apiKey.count({ where: { runId: { in: runIds }, revokedAt: null, expiresAt: { gt: new Date() } } });
  expect(liveKeys, 'no valid ephemeral key of a terminal run').to.equal(0);
  const openSessions = await deps.db.session.count({ where: { id: { in: runs.map((r) => r.sessionId) }, status: 'open' } });
  expect(openSessions, 'no session left open').to.equal(0);
}

/** Waits for every run to end and be cleaned up (by its worker or the sweep), then checks nothing was lost. */
export async function expectEveryRunSettled(deps: ApiDeps, runIds: string[], timeoutMs = 90_000) {
  await waitFor(async () => (await deps.db.run.count({ where: { id: { in: runIds }, status: { in: ['queued', 'running'] } } })) === 0, {
    timeoutMs,
    what: 'every accepted run to end',
  });
  await waitFor(async () => (await deps.db.cleanupRecord.count({ where: { runId: { in: runIds } } })) >= runIds.length, {
    timeoutMs: 30_000,
    what: 'every cleanup',
  });
  await expectNothingLost(deps, runIds);
}

/** Posts runs for `ms`, recording the ids that got a 202 and every other status seen. */
export async function postFor(api: ApiHarness, key: string, ms: number, accepted: string[], statuses: number[], prompt = 'one two three four five') {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const started = Date.now();
    const res = await postRun(api.app, key, { prompt });
    statuses.push(res.status);
    expect(Date.now() - started, 'an answer, not a hang').to.be.below(8_000);
    if (res.status === 202) accepted.push(res.body.runId);
    else {
      expect(res.status, JSON.stringify(res.body)).to.equal(503);
      expect(res.body).to.have.keys('error', 'detail', 'fix', 'docUrl', 'requestId');
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * Chaos: every `everyMs`, one worker at random is killed with SIGKILL and a new one started in its
 * place (`spawn`), for `forMs` or until `done` says so. The number of kills.
 */
export async function killRandomWorkers(
  workers: WorkerProcess[],
  spawn: () => WorkerProcess,
  opts: { everyMs: number; forMs: number; done?: () => Promise<boolean> },
): Promise<number> {
  let kills = 0;
  const until = Date.now() + opts.forMs;
  while (Date.now() < until && !(await opts.done?.())) {
    await new Promise((resolve) => setTimeout(resolve, opts.everyMs));
    const index = Math.floor(Math.random() * workers.length);
    workers[index]!.child.kill('SIGKILL');
    await workers[index]!.stopped;
    kills++;
    workers[index] = spawn();
  }
  return kills;
}
