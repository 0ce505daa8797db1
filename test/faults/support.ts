import { expect } from 'chai';
import type { ApiDeps } from '../../api/deps.js';
import { waitFor } from '../support/harness.js';

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
