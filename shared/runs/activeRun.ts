import { Prisma } from '../infra/db.js';
import { ACTIVE_STATUSES } from './lifecycle.js';

/**
 * The id of a chat's active run (SPEC section 12: at most one), or null, as an SQL scalar subquery:
 * `chatId` is an SQL expression (a column such as `c.id`, or a parameter).
 */
export const activeRunIdOf = (chatId: Prisma.Sql) =>
  Prisma.sql`(SELECT r.id::text FROM runs r WHERE r.chat_id = ${chatId} AND r.status = ANY(${[...ACTIVE_STATUSES]}::run_status[]) LIMIT 1)`;

type RawQuery = { $queryRaw<T = unknown>(query: TemplateStringsArray | Prisma.Sql, ...values: unknown[]): Prisma.PrismaPromise<T> };

/**
 * The account's active runs and queued messages (ACCOUNT_MAX_ACTIVE_RUNS counts both), read under
 * the account's transaction lock — the lock runyard_provision_runs takes — so every route that
 * starts or queues a run (POST a run, a chat message) checks the limit one at a time per account and
 * the limit is exact under any concurrency. Call it inside the transaction that then adds the run.
 */
export async function lockedActiveRunCount(tx: RawQuery, accountId: string): Promise<number> {
  await tx.$queryRaw`SELECT pg_advisory_xact_lock(hashtextextended(${accountId}::text, 0))::text`;
  const [room] = await tx.$queryRaw<{ active: number }[]>`
    SELECT COALESCE(sum(active), 0)::int AS active FROM account_active_runs WHERE account_id = ${accountId}::uuid`;
  return room?.active ?? 0;
}
