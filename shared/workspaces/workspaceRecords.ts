import { Prisma } from '../infra/db.js';
import type { WorkspaceSpec } from './workspaceRequest.js';

type Tx = { $executeRaw(query: TemplateStringsArray | Prisma.Sql, ...values: unknown[]): Prisma.PrismaPromise<number> };

/**
 * What a run or message's `workspace` does to its chat (SPEC section 18): a spec turns the chat's
 * workspace on and asks for the workspace of the chat's session, made by the next worker that runs
 * one of its runs (nothing happens if the session already has one: files and repo apply at creation
 * only); false turns it off for the chat's next runs (the workspace stays, for a later `true`).
 */
export async function setChatWorkspace(tx: Tx, accountId: string, chatId: string, spec: WorkspaceSpec | false): Promise<void> {
  if (spec === false) {
    await tx.$executeRaw`UPDATE chats SET workspace = false WHERE id = ${chatId}::uuid AND account_id = ${accountId}::uuid`;
    return;
  }
  await tx.$executeRaw`UPDATE chats SET workspace = true WHERE id = ${chatId}::uuid AND account_id = ${accountId}::uuid`;
  await tx.$executeRaw`
    INSERT INTO workspaces (session_id, account_id, spec)
    SELECT c.session_id, c.account_id, ${JSON.stringify(spec)}::jsonb FROM chats c WHERE c.id = ${chatId}::uuid AND c.account_id = ${accountId}::uuid
    ON CONFLICT (session_id) DO NOTHING`;
}
