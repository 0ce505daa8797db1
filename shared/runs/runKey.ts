import { mintEphemeralKeyData } from '../accounts/apiKeys.js';
import type { Config } from '../infra/config.js';
import type { Db } from '../infra/db.js';
import type { RunJobData } from './runJob.js';
import { sealSecret } from '../accounts/secrets.js';
import { jobContext } from './runJob.js';
import { DEFAULT_PRIORITY, PRIORITIES } from '../flow/priorities.js';

type Tx = Pick<Db, 'apiKey' | 'run'>;

/**
 * A fresh run key for the run's next job, in the caller's transaction: the key's row (hashed) and the
 * job data carrying the raw key sealed with RUNYARD_SECRET (it is stored nowhere else) and the run's
 * priority, which the fair scheduler orders by. Every way a
 * run is queued again — a continuation, a replay, a re-queue of a lost job — mints one this way.
 */
export async function mintRunKey(
  tx: Tx,
  config: Pick<Config, 'EPHEMERAL_KEY_TTL_MS' | 'RUNYARD_SECRET'>,
  accountId: string,
  runId: string,
): Promise<RunJobData> {
  const key = mintEphemeralKeyData(accountId, runId, config.EPHEMERAL_KEY_TTL_MS);
  const created = await tx.apiKey.create({ data: key.row, select: { id: true } });
  const run = await tx.run.findUnique({ where: { id: runId }, select: { priority: true } });
  const priority = PRIORITIES.find((known) => known === run?.priority) ?? DEFAULT_PRIORITY;
  return { runId, accountId, keyId: created.id, ephemeralKey: sealSecret(key.rawKey, config.RUNYARD_SECRET), priority, ...jobContext(runId) };
}
