import { isUuid } from '../../shared/infra/ids.js';
import type { ApiDeps } from '../deps.js';
import type { Caller } from '../http/http.js';
import { runRowSelect, toRunView, type RunView } from './runViews.js';
import { notFound } from '../../shared/infra/errors.js';
import { runsWithStatus } from './runsWithStatus.js';
import { WAITING_STATUS } from '../../shared/runs/lifecycle.js';
import { pendingCalls } from '../../shared/agent/steps.js';
import { episodeSteps } from '../../shared/runs/waitingRuns.js';

export const runNotFound = () => notFound('run_not_found', 'The run');

/** Whether `value` can be a run id (a UUID): anything else names no run, for the API and the CLI alike. */
export const isRunId = isUuid;

/** The run if the caller may see it: its own account's, or the one run of an ephemeral key. */
export async function getRunForCaller(deps: ApiDeps, caller: Caller, runId: string): Promise<RunView> {
  if (!isRunId(runId) || (caller.runId && caller.runId !== runId)) throw runNotFound();
  const row = await deps.db.run.findFirst({ where: { id: runId, ...(caller.accountId ? { accountId: caller.accountId } : {}) }, select: runRowSelect });
  if (!row) throw runNotFound();
  const view = toRunView(row);
  if (view.status === WAITING_STATUS) {
    const last = (await episodeSteps(deps.db, runId)).at(-1);
    view.pendingToolCalls = last ? pendingCalls(last) : [];
  }
  return view;
}

/**
 * Newest first, keyset-paginated on the run's sequence number; the tenant filter is part of the
 * SQL WHERE, so a page is never short while more of the caller's rows exist.
 */
export async function listRunsForCaller(
  deps: ApiDeps,
  caller: Caller,
  query: { status?: RunView['status']; limit: number; cursor?: string },
): Promise<{ runs: RunView[]; nextCursor: string | null }> {
  const rows = await deps.db.run.findMany({
    where: {
      accountId: caller.accountId!,
      ...(caller.runId ? { id: caller.runId } : {}),
      ...(query.status ? runsWithStatus(query.status) : {}),
      ...(query.cursor ? { seq: { lt: BigInt(query.cursor) } } : {}),
    },
    orderBy: { seq: 'desc' },
    take: query.limit + 1,
    select: { ...runRowSelect, seq: true },
  });
  const page = rows.slice(0, query.limit);
  const nextCursor = rows.length > query.limit ? String(page[page.length - 1]!.seq) : null;
  return { runs: page.map(toRunView), nextCursor };
}
