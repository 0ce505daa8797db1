import type { RunEventWriter } from '../../shared/stream/events.js';
import type { MessagePart } from '../../shared/stream/messageParts.js';
import type { PendingToolCall } from '../../shared/agent/steps.js';
import { emptyUsage, type Usage } from '../../shared/agent/models.js';
import type { FinishReason } from '../../shared/runs/lifecycle.js';
import type { SecretRow, ToolSecrets } from '../../shared/accounts/toolSecrets.js';
import type { ChatContext } from './conversation.js';
import type { WorkerDeps } from '../deps.js';
import type { OpenWorkspace, WorkspaceManager } from '../workspaces/workspaceManager.js';
import type { AccountProviderKey } from '../providers/index.js';
import type { AttemptRun } from '../attempt/runStore.js';
import type { PersistedStep, StepStore } from '../attempt/stepStore.js';
import type { McpConnections } from '../tools/mcpServers.js';

/**
 * What one attempt's agent loop works with (LoopContext) and what it has done so far (LoopProgress):
 * the loop (agentLoop.ts), compaction (compaction.ts) and the key of the account's provider
 * (accountProviderKey.ts) share them; in a file of their own so none of those imports another in a circle.
 */
export type LoopContext = {
  deps: WorkerDeps;
  steps: StepStore;
  run: AttemptRun;
  events: RunEventWriter;
  /** The run's ephemeral key: the Bearer token of every server-tool call. */
  apiKey: string;
  signal: AbortSignal;
  /** The chat before this run's answer: its latest compaction and the messages after it. A compaction replaces it. */
  chat: ChatContext;
  /** The account's compaction threshold (null: the default) and whether it has spend limits to check before each model call. */
  accountSettings: { compactionThresholdPercent: number | null; hasLimits: boolean };
  onText: (delta: string) => void;
  /** The account's signing secrets as the claim read them (sealed; null if it has none yet). */
  sealedToolSecrets: SecretRow | null;
  /** The account's signing secrets, opened once per attempt when its first tool call goes out. */
  toolSecrets?: ToolSecrets;
  /** The run's MCP servers, connected for this attempt. */
  mcp?: McpConnections;
  /** The account's own provider key, opened on first use (never logged, never in job data). */
  openedProviderKey?: AccountProviderKey;
  /** The chat's workspace, open on this worker for the attempt (SPEC section 18). */
  workspace?: { open: OpenWorkspace; manager: WorkspaceManager };
};

/** What the attempt has done so far: a cancel keeps it (marked interrupted). */
export type LoopProgress = {
  /** Parts of the finished steps. */
  parts: MessagePart[];
  /** The step in progress: its text, and its persisted calls once the model finished. */
  stepText: string;
  /** The id of the text part the step has open on the stream, if any. */
  openTextId: string | null;
  step: PersistedStep | null;
  /** The run's usage this episode: every model call's, compactions included. */
  usage: Usage;
  /** The model calls not yet charged to the account (a step's call is charged when the step is persisted). */
  uncharged: Usage;
  /** The input tokens of the attempt's last model call (null before its first): when to compact. */
  lastInputTokens: number | null;
  /** The input tokens before a compaction, until the next call shows how many it saved. */
  savingFrom: number | null;
  steps: number;
  providerResponseId: string | null;
};

/** How the attempt's loop ended: with an answer (or max_steps), or parked on the caller's tool results and approvals. */
export type LoopResult =
  (LoopProgress & { outcome: 'finished'; finishReason: FinishReason }) | (LoopProgress & { outcome: 'parked'; pending: PendingToolCall[] });

export const newProgress = (): LoopProgress => ({
  parts: [],
  stepText: '',
  openTextId: null,
  step: null,
  usage: emptyUsage(),
  uncharged: emptyUsage(),
  lastInputTokens: null,
  savingFrom: null,
  steps: 0,
  providerResponseId: null,
});
