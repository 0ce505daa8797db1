import type { Db } from '../../shared/infra/db.js';
import { DEFAULT_MAX_STEPS } from '../../shared/runs/lifecycle.js';
import type { McpServerDefinition, ToolDefinition } from '../../shared/agent/tools.js';
import type { RunWebhook } from '../../shared/webhooks/runWebhooks.js';

/** What a chat's next run is started with (SPEC section 12): its last message's settings, carried from run to run. */
export type ChatSettings = {
  model: string;
  system: string | null;
  maxOutputTokens: number | null;
  maxSteps: number;
  tools: ToolDefinition[] | null;
  mcpServers: McpServerDefinition[] | null;
  webhook: RunWebhook | null;
};

/** The settings a message names; what it omits stays the chat's. */
export type SettingsOverrides = Partial<ChatSettings>;

type Tx = Pick<Db, '$queryRaw'>;

/**
 * A chat's current settings: what its last message left (chats.settings), or, for a chat that has had
 * one run only (started by POST /api/chat/runs), that run's.
 */
export async function currentSettings(tx: Tx, chatId: string, stored: unknown): Promise<ChatSettings> {
  if (stored) return stored as ChatSettings;
  const [run] = await tx.$queryRaw<
    { model: string; system: string | null; max_output_tokens: number | null; max_steps: number; tools: unknown; mcp_servers: unknown; webhook: unknown }[]
  >`SELECT model, system, max_output_tokens, max_steps, tools, mcp_servers, webhook FROM runs WHERE chat_id = ${chatId}::uuid ORDER BY seq DESC LIMIT 1`;
  return {
    model: run?.model ?? 'local/echo',
    system: run?.system ?? null,
    maxOutputTokens: run?.max_output_tokens ?? null,
    maxSteps: run?.max_steps ?? DEFAULT_MAX_STEPS,
    tools: (run?.tools as ToolDefinition[] | null) ?? null,
    mcpServers: (run?.mcp_servers as McpServerDefinition[] | null) ?? null,
    webhook: (run?.webhook as RunWebhook | null) ?? null,
  };
}

/** The chat's settings from now on: the message's where it names one, the chat's elsewhere. */
export function withOverrides(current: ChatSettings, overrides: SettingsOverrides): ChatSettings {
  const named = Object.fromEntries(Object.entries(overrides).filter(([, value]) => value !== undefined));
  return { ...current, ...named };
}
