import { expect } from 'chai';
import { AppError } from '../../shared/infra/errors.js';
import {
  ACTIVE_STATUSES,
  canTransition,
  RUN_STATUSES,
  RUNNABLE_STATUSES,
  TERMINAL_STATUSES,
  TRANSITION_REFUSALS,
  TransitionRefused,
  TRANSITIONS,
  type RunStatus,
} from '../../shared/runs/lifecycle.js';

describe('the run lifecycle (shared/runs/lifecycle.ts)', () => {
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

  it('refuses a transition an API caller asked for with a typed 409 naming the transition and the status it met', () => {
    const refused = new TransitionRefused('replay', 'r-1', 'running', 'The run is running.');
    expect(refused).to.be.instanceOf(AppError);
    expect(refused).to.include({ transition: 'replay', runId: 'r-1', from: 'running', status: 409, code: 'run_not_terminal' });
    // Every transition a caller can ask for starts from statuses the others do not all cover: its refusal is reachable.
    for (const name of Object.keys(TRANSITION_REFUSALS) as (keyof typeof TRANSITION_REFUSALS)[]) {
      expect(
        RUN_STATUSES.filter((status) => !(TRANSITIONS[name].from as readonly RunStatus[]).includes(status)),
        name,
      ).to.not.be.empty;
    }
  });
});
