import type { Prisma } from './db.js';
import type { RunStatus } from './generated/prisma/enums.js';

// A run with one of these statuses is always in open_runs: it is there from its provisioning (or
// replay) until the cleanup of its episode, which happens in the statement that ends it.
const IN_FLIGHT: ReadonlySet<RunStatus> = new Set(['queued', 'running']);

/**
 * The filter for runs with `status`. runs has no index on status (so that its updates stay HOT):
 * runs in flight are found through open_runs, which holds only the backlog, so listing an account's
 * running runs reads the backlog instead of the account's whole history.
 */
export function runsWithStatus(status: RunStatus): Prisma.RunWhereInput {
  return IN_FLIGHT.has(status) ? { status, openRun: { isNot: null } } : { status };
}
