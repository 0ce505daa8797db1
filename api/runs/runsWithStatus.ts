import type { Prisma } from '../../shared/infra/db.js';
import type { RunStatus } from '../../shared/runs/lifecycle.js';
import { isTerminalStatus } from '../../shared/runs/lifecycle.js';

/**
 * The filter for runs with `status`. runs has no index on status (so that its updates stay HOT):
 * runs in flight are found through open_runs, which holds only the backlog, so listing an account's
 * running runs reads the backlog instead of the account's whole history.
 */
export function runsWithStatus(status: RunStatus): Prisma.RunWhereInput {
  // A run that has not ended is always in open_runs: it is there from its provisioning (or replay)
  // until the cleanup of its episode, which happens in the statement that ends it.
  return isTerminalStatus(status) ? { status } : { status, openRun: { isNot: null } };
}
