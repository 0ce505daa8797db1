import { isUuid } from '../infra/ids.js';
import type { Config } from '../infra/config.js';
import type { Db } from '../infra/db.js';
import { AppError } from '../infra/errors.js';
import type { RunAdmission } from '../flow/runAdmission.js';

/**
 * An account's own settings beside the deployment's defaults: how long its idle chats are kept
 * (RETENTION_DAYS, SPEC section 17) and when its chats are compacted (COMPACTION_THRESHOLD_PERCENT,
 * section 13), and its share of the fleet (section 15: `weight`, default 1, and `maxRunning`, its
 * running runs fleet-wide, null for no cap), and what its uploaded files may hold (section 20: `fileQuotaMb`, FILE_QUOTA_MB). Null means "the default"; the view says which values
 * are defaults. The CLI's `accounts settings` and the admin API's
 * /api/admin/accounts/{account}/settings both use this.
 */

export type AccountSettingsChange = {
  retentionDays?: number | null;
  compactionThresholdPercent?: number | null;
  weight?: number | null;
  maxRunning?: number | null;
  fileQuotaMb?: number | null;
};

export type AccountSettingsView = {
  account: string;
  accountId: string;
  retentionDays: number | null;
  retentionDaysIsDefault: boolean;
  compactionThresholdPercent: number;
  compactionThresholdIsDefault: boolean;
  weight: number;
  maxRunning: number | null;
  /** What its uploaded files may hold together (MiB; SPEC section 20). */
  fileQuotaMb: number;
  fileQuotaIsDefault: boolean;
};

/** An account by name (or id), for the CLI and the admin API; 404 account_not_found otherwise. */
export async function findAccount(db: Db, nameOrId: string): Promise<{ id: string; name: string }> {
  const where = isUuid(nameOrId) ? { OR: [{ id: nameOrId }, { name: nameOrId }] } : { name: nameOrId };
  const account = await db.account.findFirst({ where, select: { id: true, name: true } });
  if (!account) throw new AppError('account_not_found', 404, `No account "${nameOrId}".`, 'Create one with `keys create --account NAME`.');
  return account;
}

/**
 * Applies the change (undefined: unchanged, null: back to the default) and answers the account's
 * settings. A new weight or maxRunning reaches the fair scheduler at once.
 */
export async function updateAccountSettings(
  deps: { db: Db; config: Config; admission: RunAdmission },
  account: { id: string; name: string },
  change: AccountSettingsChange = {},
): Promise<AccountSettingsView> {
  const { db, config } = deps;
  const { weight, ...rest } = change;
  const data = { ...rest, ...(weight !== undefined ? { weight: weight ?? 1 } : {}) };
  if (Object.values(data).some((value) => value !== undefined)) await db.account.update({ where: { id: account.id }, data });
  const row = await db.account.findUniqueOrThrow({
    where: { id: account.id },
    select: { retentionDays: true, compactionThresholdPercent: true, weight: true, maxRunning: true, fileQuotaMb: true },
  });
  if (change.weight !== undefined || change.maxRunning !== undefined)
    await deps.admission.settingsChanged(account.id, { weight: row.weight, maxRunning: row.maxRunning });
  return {
    account: account.name,
    accountId: account.id,
    // null: kept until an operator sets a period (no RETENTION_DAYS, no setting of its own).
    retentionDays: row.retentionDays ?? config.RETENTION_DAYS ?? null,
    retentionDaysIsDefault: row.retentionDays === null,
    compactionThresholdPercent: row.compactionThresholdPercent ?? config.COMPACTION_THRESHOLD_PERCENT,
    compactionThresholdIsDefault: row.compactionThresholdPercent === null,
    weight: row.weight,
    maxRunning: row.maxRunning,
    fileQuotaMb: row.fileQuotaMb ?? config.FILE_QUOTA_MB,
    fileQuotaIsDefault: row.fileQuotaMb === null,
  };
}
