import type { Prisma } from '../infra/db.js';
import { ACTIVE_STATUSES } from './lifecycle.js';

type Tx = { $executeRaw(query: TemplateStringsArray | Prisma.Sql, ...values: unknown[]): Prisma.PrismaPromise<number> };

/**
 * An edit or a regenerate (SPEC section 19) takes a chat's turns from `fromSeq` on out of its
 * history: the runs that answered them, and an active one, are marked discarded — whatever they
 * persist later (an interrupted answer) is not shown nor sent to a model again. Their status, usage
 * and cleanup are untouched: this is not a transition.
 */
export async function discardRunsFrom(tx: Tx, chatId: string, fromSeq: bigint): Promise<void> {
  await tx.$executeRaw`
    UPDATE runs SET discarded = true
    WHERE chat_id = ${chatId}::uuid AND NOT discarded
      AND (id IN (SELECT run_id FROM messages WHERE chat_id = ${chatId}::uuid AND seq >= ${fromSeq} AND run_id IS NOT NULL)
        OR status = ANY(${[...ACTIVE_STATUSES]}::run_status[]))`;
}
