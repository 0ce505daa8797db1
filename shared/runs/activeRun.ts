import { Prisma } from '../infra/db.js';
import { ACTIVE_STATUSES } from './lifecycle.js';

/**
 * The id of a chat's active run (SPEC section 12: at most one), or null, as an SQL scalar subquery:
 * `chatId` is an SQL expression (a column such as `c.id`, or a parameter).
 */
export const activeRunIdOf = (chatId: Prisma.Sql) =>
  Prisma.sql`(SELECT r.id::text FROM runs r WHERE r.chat_id = ${chatId} AND r.status = ANY(${[...ACTIVE_STATUSES]}::run_status[]) LIMIT 1)`;
