import { expect } from 'chai';
import type { ApiDeps } from '../../api/deps.js';

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
