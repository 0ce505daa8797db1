import type { Config } from '../../infra/config.js';
import type { Db } from '../../infra/db.js';
import type { RunAdmission } from '../../flow/runAdmission.js';
import { TRANSITIONS } from '../lifecycle.js';
import { mintRunKey } from '../runKey.js';

/**
 * Re-queues a queued or running run whose job vanished (Redis lost its data, or a job was removed by
 * hand). The raw ephemeral key is stored nowhere, so the run gets a fresh one and the old is revoked.
 * Fenced on the attempt the sweep saw, so a run that came back to life meanwhile is left alone.
 */
export async function requeueLostRun(deps: { db: Db; admission: RunAdmission; config: Config }, runId: string, seenAttempt: number): Promise<boolean> {
  const jobData = await deps.db.$transaction(async (tx) => {
    const rows = await tx.$queryRaw<{ account_id: string }[]>`
      UPDATE runs SET status = ${TRANSITIONS.requeueLost.to[0]}::run_status, heartbeat_at = now(), worker_id = NULL
      WHERE id = ${runId}::uuid AND attempt = ${seenAttempt} AND status = ANY(${[...TRANSITIONS.requeueLost.from]}::run_status[]) AND cancel_requested_at IS NULL
      RETURNING account_id::text`;
    const row = rows[0];
    if (!row) return null;
    await tx.apiKey.updateMany({ where: { runId, accountId: row.account_id, kind: 'ephemeral', revokedAt: null }, data: { revokedAt: new Date() } });
    return mintRunKey(tx, deps.config, row.account_id, runId);
  });
  if (!jobData) return false;
  await deps.admission.requeue(jobData);
  return true;
}
