import { expect } from 'chai';
import { ACTIVE_STATUSES, canTransition, RUN_STATUSES, RUNNABLE_STATUSES, TERMINAL_STATUSES, TRANSITIONS, type RunStatus } from '../../shared/runLifecycle.js';

describe('the run lifecycle (shared/runLifecycle.ts)', () => {
  const moves = Object.values(TRANSITIONS).flatMap((move) => move.from.flatMap((from) => move.to.map((to) => [from, to] as [RunStatus, RunStatus])));

  it('lets every status reach a terminal one', () => {
    for (const start of RUN_STATUSES) {
      const seen = new Set<RunStatus>([start]);
      for (let grew = true; grew;) {
        grew = false;
        for (const [from, to] of moves) if (seen.has(from) && !seen.has(to)) grew = Boolean(seen.add(to));
      }
      expect(
        TERMINAL_STATUSES.some((status) => seen.has(status)),
        `${start} can end`,
      ).to.equal(true);
    }
  });

  it('leaves a terminal status only by a replay, and parks only a running run', () => {
    for (const [from, to] of moves) {
      if ((TERMINAL_STATUSES as readonly string[]).includes(from)) {
        expect(TRANSITIONS.replay.from).to.include(from);
        expect(to, `${from} → ${to}`).to.equal('queued');
      }
      if (to === 'requires_action') expect(from).to.equal('running');
    }
    expect(canTransition('completed', 'running')).to.equal(false);
    expect(canTransition('requires_action', 'queued')).to.equal(true);
    expect(canTransition('queued', 'requires_action')).to.equal(false);
  });

  it('keeps the sets consistent: runnable and waiting runs are active, no active run is terminal', () => {
    for (const status of RUNNABLE_STATUSES) expect(ACTIVE_STATUSES).to.include(status);
    expect(ACTIVE_STATUSES).to.include('requires_action');
    for (const status of ACTIVE_STATUSES) expect(TERMINAL_STATUSES as readonly string[]).to.not.include(status);
    expect([...ACTIVE_STATUSES, ...TERMINAL_STATUSES].sort()).to.deep.equal([...RUN_STATUSES].sort());
  });
});
