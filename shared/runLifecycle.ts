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
export type TerminalStatus = (typeof TERMINAL_STATUSES)[number];

/** Whether a run with this status has ended (completed, failed or cancelled). */
export const isTerminalStatus = (status: string): status is TerminalStatus => (TERMINAL_STATUSES as readonly string[]).includes(status);

/** Why a run ended without a model answer, as the run shows it: `finishReason`. */
export const FINISH_REASONS = ['stop', 'length', 'max_steps', 'cancelled', 'error'] as const;
export type FinishReason = (typeof FINISH_REASONS)[number];

/** A status list as an SQL literal list, for `IN (...)`: the values are these constants, never input. */
export const sqlList = (statuses: readonly RunStatus[]) => statuses.map((status) => `'${status}'`).join(', ');
