import { AppError } from '../infra/errors.js';

/**
 * The run's lifecycle, named once: every status, which of them are active (count towards the
 * account's limit, owned by the sweep) and which are terminal. TypeScript types, the API's enum and
 * the CLI's choices derive from these lists; SQL takes them through `sqlList`.
 */
export const RUN_STATUSES = ['queued', 'running', 'requires_action', 'completed', 'failed', 'cancelled'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

/**
 * A run in one of these has not ended: it holds a slot of the account's active-run limit and stays
 * in open_runs (the triggers of prisma/migrations/*_requires_action_is_active spell the same list).
 */
export const ACTIVE_STATUSES = ['queued', 'running', 'requires_action'] as const satisfies readonly RunStatus[];

/** A run in one of these is a worker's to run: a job exists (or the sweep re-creates it), heartbeats apply. */
export const RUNNABLE_STATUSES = ['queued', 'running'] as const satisfies readonly RunStatus[];

/** Parked: the step waits for the caller's tool results or approvals; no worker holds the run. */
export const WAITING_STATUS = 'requires_action' satisfies RunStatus;

/** A run in one of these has ended and been cleaned up (or is about to be, in the same statement). */
export const TERMINAL_STATUSES = ['completed', 'failed', 'cancelled'] as const satisfies readonly RunStatus[];

/** The model calls a run's agent loop may make when it names no maxSteps (the api, the chat's settings and the database's provisioning functions). */
export const DEFAULT_MAX_STEPS = 20;
export type TerminalStatus = (typeof TERMINAL_STATUSES)[number];

/**
 * Every move a run's status may make, named once. Each is one statement in
 * shared/runs/transitions/<name>.ts that checks the state it starts from in its WHERE clause and
 * writes a status it may end in, both taken from here, and changes nothing otherwise — its caller is
 * told (false, or a 409 for an api caller), never a silent no-op. No other file changes a run's row
 * (test/unit/runWriters.test.ts).
 */
export const TRANSITIONS = {
  /** A worker claims the run's next attempt (running: it takes over a dead worker's attempt). */
  claim: { from: RUNNABLE_STATUSES, to: ['running'] },
  /**
   * The attempt answered (or was cancelled while running, or stopped by its account's spend limit:
   * failed, its output kept): the run ends with its message and cleanup.
   */
  finish: { from: ['running'], to: ['completed', 'cancelled', 'failed'] },
  /** The attempt failed: queued again for a retry (or handed back on shutdown), or failed for good with cleanup. */
  failAttempt: { from: ['running'], to: ['queued', 'failed'] },
  /** The step waits for the caller's tool results or approvals. */
  park: { from: ['running'], to: ['requires_action'] },
  /** The caller answered every pending call. */
  continue: { from: ['requires_action'], to: ['queued'] },
  /** Ended with no worker holding it: a queued run cancelled, a stalled or unqueueable run failed. */
  endUnheld: { from: RUNNABLE_STATUSES, to: ['cancelled', 'failed'] },
  /** A parked run cancelled, or failed after RUN_ACTION_TIMEOUT_MS. */
  endWaiting: { from: ['requires_action'], to: ['cancelled', 'failed'] },
  /** A run whose job vanished is queued again. */
  requeueLost: { from: RUNNABLE_STATUSES, to: ['queued'] },
  /** An ended run starts a new episode. */
  replay: { from: TERMINAL_STATUSES, to: ['queued'] },
  /** A running run is asked to stop: its status stays, the request is a flag its worker acts on. */
  requestCancel: { from: ['running'], to: ['running'] },
} as const satisfies Record<string, { from: readonly RunStatus[]; to: readonly RunStatus[] }>;

export type TransitionName = keyof typeof TRANSITIONS;

/**
 * The hand-over from one run of a chat to the next (SPEC section 12): when a chat's active run ends
 * (enters a TERMINAL status from an ACTIVE one, by any transition), the chat's first queued message
 * becomes a new run in `queued`, in the same transaction — a trigger on runs
 * (prisma/migrations/*_conversations, runyard_promote_queued_message) — and waits in
 * pending_run_jobs until a worker mints its run key and queues its job (worker/promotedRuns.ts); the
 * sweep re-queues one whose job never came. A chat has at most one ACTIVE run (a unique index).
 */
export const PROMOTION = { after: TERMINAL_STATUSES, starts: 'queued' } as const satisfies { after: readonly RunStatus[]; starts: RunStatus };

/**
 * The transitions an API caller asks for, and how the API names their refusal: the error code
 * (api/http/errorCatalog.ts) and what to do about it. (A worker's transitions — claim, finish,
 * failAttempt, park, requeueLost — are refused by answering false: the attempt lost the run, and its
 * caller ends it as fenced.)
 */
export const TRANSITION_REFUSALS = {
  continue: { code: 'run_not_waiting', fix: 'Post tool results only while the run is requires_action (once per step).' },
  endUnheld: { code: 'run_finished', fix: 'Nothing to cancel. To run it again, replay it.' },
  endWaiting: { code: 'run_finished', fix: 'Nothing to cancel. To run it again, replay it.' },
  replay: { code: 'run_not_terminal', fix: 'Wait until the run finishes, or cancel it first.' },
} as const satisfies Partial<Record<TransitionName, { code: string; fix: string }>>;

/**
 * A transition an API caller asked of a run whose status does not allow it: typed (which transition,
 * from which status) and answered as a 409 with the transition's code.
 */
export class TransitionRefused extends AppError {
  constructor(
    readonly transition: keyof typeof TRANSITION_REFUSALS,
    readonly runId: string,
    readonly from: RunStatus | string,
    detail: string,
  ) {
    super(TRANSITION_REFUSALS[transition].code, 409, detail, TRANSITION_REFUSALS[transition].fix);
    this.name = 'TransitionRefused';
  }
}

/** Whether some transition moves a run from `from` to `to`. */
export const canTransition = (from: RunStatus, to: RunStatus): boolean =>
  Object.values(TRANSITIONS).some((move) => (move.from as readonly RunStatus[]).includes(from) && (move.to as readonly RunStatus[]).includes(to));

/** Whether a run with this status has ended (completed, failed or cancelled). */
export const isRunnableStatus = (status: string): status is (typeof RUNNABLE_STATUSES)[number] => (RUNNABLE_STATUSES as readonly string[]).includes(status);
export const isTerminalStatus = (status: string): status is TerminalStatus => (TERMINAL_STATUSES as readonly string[]).includes(status);

/** Why a run ended without a model answer, as the run shows it: `finishReason`. */
export const FINISH_REASONS = ['stop', 'length', 'max_steps', 'cancelled', 'error'] as const;
export type FinishReason = (typeof FINISH_REASONS)[number];

/** A status list as an SQL literal list, for `IN (...)`: the values are these constants, never input. */
export const sqlList = (statuses: readonly RunStatus[]) => statuses.map((status) => `'${status}'`).join(', ');
