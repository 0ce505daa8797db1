import type { WorkspaceSpec } from './workspaceRequest.js';
import { setChatWorkspaceOn, type ChatTx } from '../chats/chatStore.js';

/**
 * What a run or message's `workspace` does to its chat (SPEC section 18): a spec turns the chat's
 * workspace on and asks for the workspace of the chat's session, made by the next worker that runs
 * one of its runs (nothing happens if the session already has one: files and repo apply at creation
 * only); false turns it off for the chat's next runs (the workspace stays, for a later `true`).
 */
export async function setChatWorkspace(tx: ChatTx, accountId: string, chatId: string, spec: WorkspaceSpec | false): Promise<void> {
  await setChatWorkspaceOn(tx, chatId, accountId, spec !== false);
  if (spec === false) return;
  await tx.$executeRaw`
    INSERT INTO workspaces (session_id, account_id, spec)
    SELECT c.session_id, c.account_id, ${JSON.stringify(spec)}::jsonb FROM chats c WHERE c.id = ${chatId}::uuid AND c.account_id = ${accountId}::uuid
    ON CONFLICT (session_id) DO NOTHING`;
}
