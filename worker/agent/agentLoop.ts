import { randomUUID } from 'node:crypto';
import { FencedError } from '../../shared/stream/events.js';
import type { MessagePart } from '../../shared/stream/messageParts.js';
import { pendingCalls, stepParts, toolPartOf, type ToolOutcome } from '../../shared/agent/steps.js';
import { emptyUsage, modelLabel, parseModelId, type Usage } from '../../shared/agent/models.js';
import { LIMIT_REACHED, type LimitReached } from '../../shared/accounts/usageLimits.js';
import type { FinishReason } from '../../shared/runs/lifecycle.js';
import { accountToolSecrets, openRow, type ToolSecrets } from '../../shared/accounts/toolSecrets.js';
import { secretNamesOf, type ToolDefinition } from '../../shared/agent/tools.js';
import { reserveSpend } from '../../shared/accounts/spendReservations.js';
import { findUnstorableText, storableJson, storableText, unstorableReason } from '../../shared/infra/storableText.js';
import type { SchemaChecker } from '../../shared/agent/toolSchemas/schemaChecker.js';
import { RunError } from '../../shared/infra/errors.js';
import { chunksOfParts, toolChunks } from '../../shared/stream/partChunks.js';
import { stepMessages, toModelMessages } from './conversation.js';
import { assertOwnMessageFits, compact, compactedInThisEpisode, compactionDue, recordSaving, showCompaction, withSummary } from './compaction.js';
import type { ModelMessage, ProviderRequest, StepSink } from '../providers/types.js';
import { isWorkspaceToolName, type WorkspaceToolName } from '../../shared/workspaces/workspaceRequest.js';
import { openAccountSecrets } from '../../shared/accounts/accountSecrets.js';
import { accountProviderKey } from './accountProviderKey.js';
import { changesWorkspace, runWorkspaceTool, WORKSPACE_TOOLS, type WorkspaceTool } from '../workspaces/workspaceTools.js';
import type { PersistedStep, StepToolCall } from '../attempt/stepStore.js';
import { callServerTool } from '../tools/callServerTool.js';
import { McpConnections, type McpTool } from '../tools/mcpServers.js';
import { inModelCallSpan, inToolSpan } from '../attempt/runSpans.js';
import { failSpan } from '../../shared/infra/tracing.js';
import type { LoopContext, LoopProgress, LoopResult } from './loopContext.js';

/**
 * The agent loop of one attempt (SPEC section 9): model call → the step's tool calls, executed
 * concurrently → results fed back → next step, until the model answers without a tool call or
 * the run's `maxSteps`. Steps persisted by earlier attempts of the episode are sent to the stream
 * again and never repeated; an unfinished one gets only its missing results.
 */
const CANCELLED_CALL = 'The run was cancelled before this tool call finished.';

export async function runAgentLoop(ctx: LoopContext, persisted: PersistedStep[], progress: LoopProgress): Promise<LoopResult> {
  const { mcpServers } = ctx.run;
  if (mcpServers.length) {
    const named = secretNamesOf(mcpServers);
    const secrets = await openAccountSecrets(ctx.deps.db, ctx.run.accountId, named, ctx.deps.config.RUNYARD_SECRET);
    ctx.mcp = await McpConnections.open(mcpServers, { apiKey: ctx.apiKey, apiUrl: ctx.deps.apiBaseUrl, secrets }, ctx.deps.config.TOOL_TIMEOUT_MS, ctx.signal);
  }
  try {
    return await loop(ctx, persisted, progress);
  } finally {
    await ctx.mcp?.close();
  }
}

/** The tools the model is offered: the run's own, then its MCP servers'. */
const offeredTools = (ctx: LoopContext): (ToolDefinition | McpTool | WorkspaceTool)[] => [
  ...ctx.run.tools,
  ...(ctx.mcp?.tools ?? []),
  ...(ctx.workspace ? WORKSPACE_TOOLS : []),
];

async function loop(ctx: LoopContext, persisted: PersistedStep[], progress: LoopProgress): Promise<LoopResult> {
  const history = toModelMessages(ctx.chat.current);
  if (persisted.length === 0 && !compactedInThisEpisode(ctx)) assertOwnMessageFits(ctx);
  // A compaction an earlier attempt of this episode made is shown again where it happened, never made again.
  let compactionShown = !compactedInThisEpisode(ctx);
  const showPersistedCompaction = (step: number) => {
    if (compactionShown || ctx.chat.compaction!.beforeStep !== step) return;
    showCompaction(ctx, progress, ctx.chat.compaction!);
    addUsage(progress.usage, ctx.chat.compaction!.usage);
    compactionShown = true;
  };
  for (const step of persisted) {
    showPersistedCompaction(step.step);
    if (step.usage) addUsage(progress.usage, step.usage);
    for (const chunk of chunksOfParts(stepParts(step), `text-${ctx.run.attempt}-${step.step}`, { openLastStep: true })) ctx.events.emit(chunk);
    progress.steps = step.step + 1;
    const parked = await runStepCalls(ctx, progress, step);
    if (parked) return parked;
    closeStep(ctx, progress, history, step);
  }
  for (let index = persisted.length; ; index++) {
    if (index >= ctx.run.maxSteps) return { ...progress, outcome: 'finished', finishReason: 'max_steps' };
    showPersistedCompaction(index);
    if (compactionDue(ctx, progress)) {
      await checkSpendLimits(ctx);
      await waitForCapacity(ctx, progress.lastInputTokens ?? 0);
      addUsage(progress.usage, await compact(ctx, progress, index));
    }
    // Estimated only for a model with a tokens-per-minute rule (the estimate serializes the whole conversation).
    await waitForCapacity(ctx, () => estimatedTokens(ctx, history));
    const answer = await callModel(ctx, progress, history, index);
    if (answer.toolCalls.length === 0) {
      ctx.events.emit({ type: 'finish-step' });
      progress.parts.push({ type: 'step-start' }, ...(answer.text ? [{ type: 'text' as const, text: answer.text }] : []));
      progress.stepText = '';
      return { ...progress, outcome: 'finished', finishReason: answer.finishReason };
    }
    const step: PersistedStep = {
      step: index,
      text: answer.text,
      toolCalls: await Promise.all(answer.toolCalls.map((call) => checkCall(ctx.deps.schemas, offeredTools(ctx), call))),
      results: {},
      approvals: {},
      usage: answer.usage,
      providerResponseId: answer.providerResponseId,
    };
    for (const call of step.toolCalls) {
      if (call.inputError) {
        step.results[call.toolCallId] = { error: call.inputError };
        ctx.deps.metrics.toolInputErrors.inc();
      }
      ctx.events.emit(inputChunk(call));
    }
    if (!(await ctx.steps.recordStep(ctx.run.id, ctx.run.attempt, ctx.run.model, step, answer.startedAt))) throw new FencedError(ctx.run.id, ctx.run.attempt);
    progress.uncharged = emptyUsage();
    const parked = await runStepCalls(ctx, progress, step);
    if (parked) return parked;
    closeStep(ctx, progress, history, step);
  }
}

/**
 * Executes the step's server calls that can run (no result yet, approved if they need it); if
 * calls remain that only the caller can answer, the step is over for this attempt: the run parks.
 */
async function runStepCalls(ctx: LoopContext, progress: LoopProgress, step: PersistedStep): Promise<LoopResult | null> {
  progress.step = step;
  await executeCalls(ctx, step);
  const pending = pendingCalls(step);
  if (pending.length === 0) return null;
  for (const call of pending) {
    if (call.kind === 'approval') ctx.events.emit({ type: 'tool-approval-request', approvalId: approvalIdOf(call.toolCallId), toolCallId: call.toolCallId });
    ctx.deps.metrics.toolCalls.inc({ kind: call.kind === 'result' ? 'client' : 'approval', outcome: 'requested' });
  }
  ctx.events.emit({ type: 'finish-step' });
  progress.parts.push(...stepParts(step));
  progress.step = null;
  return { ...progress, outcome: 'parked', pending };
}

/** The approval request's id for a call: one call, one request. */
export const approvalIdOf = (toolCallId: string) => `approval-${toolCallId}`;

type ModelAnswer = {
  text: string;
  toolCalls: { toolCallId: string; toolName: string; rawInput: string }[];
  usage: Usage;
  providerResponseId: string | null;
  finishReason: FinishReason;
  /** When the model call started, for the run's timeline. */
  startedAt: Date;
};

async function callModel(ctx: LoopContext, progress: LoopProgress, history: ModelMessage[], index: number): Promise<ModelAnswer> {
  const { run, events, deps } = ctx;
  const model = parseModelId(run.model);
  if (!model) throw new RunError('invalid_run', `unknown model ${run.model}`, false);
  const request = {
    model,
    messages: withSummary(ctx.chat, [...ctx.chat.earlierModelMessages, ...history]),
    tools: offeredTools(ctx).map(({ name, description, inputSchema }) => ({ name, description, inputSchema })),
    system: systemPrompt(ctx),
    maxOutputTokens: run.maxOutputTokens ?? (undefined as number | undefined),
    signal: ctx.signal,
  };
  const inputEstimate = estimatedInputTokens(request);
  // Under a limit the call gets the output that fits (SPEC section 21), reserved before it is sent.
  request.maxOutputTokens = (await reserveForCall(ctx, inputEstimate)) ?? request.maxOutputTokens;
  const textId = index === 0 ? `text-${run.attempt}` : `text-${run.attempt}-${index}`;
  events.emit({ type: 'start-step' });
  progress.stepText = '';
  const sink: StepSink = {
    text: (raw) => {
      const delta = storableText(raw);
      if (!progress.openTextId) events.emit({ type: 'text-start', id: textId });
      progress.openTextId = textId;
      progress.stepText += delta;
      events.emit({ type: 'text-delta', id: textId, delta });
      ctx.onText(delta);
    },
    toolInputStart: (toolCallId, toolName) => events.emit({ type: 'tool-input-start', toolCallId, toolName }),
    toolInputDelta: (toolCallId, inputTextDelta) => events.emit({ type: 'tool-input-delta', toolCallId, inputTextDelta }),
  };
  const counted: Partial<Usage> = {};
  let toolInputChars = 0;
  sink.usage = (usage) => Object.assign(counted, usage);
  const toolInputDelta = sink.toolInputDelta;
  sink.toolInputDelta = (toolCallId, delta) => {
    toolInputChars += delta.length;
    toolInputDelta(toolCallId, delta);
  };
  // Noted as it starts: if this worker dies mid-call, the next attempt (or the sweep) charges it. The
  // note is written to Redis's connection (with the step's first events) before the request to the
  // provider's, so it is on its way first; the call does not wait for Redis to answer (a step's
  // round trip saved), its end does.
  const noted = deps.calls.noteStart(events, run.id, { attempt: run.attempt, model: run.model, inputTokens: inputEstimate });
  const startedAt = new Date();
  let result;
  try {
    // The attachments' bytes, read just before the call and let go of when it ends (local/echo needs only their digests).
    const attached = await deps.attachments.load(run.accountId, request.messages, model.provider !== 'local', ctx.signal);
    try {
      const sent = { ...request, messages: attached.messages };
      result = await inModelCallSpan(model, {}, () => deps.providers(model.provider, accountProviderKey(ctx)).stream(sent, sink));
    } finally {
      attached.release();
    }
  } catch (err) {
    // Cut short (cancel, interrupt, shutdown, a failed stream): charged what it used all the same.
    const cut = cutCallUsage(inputEstimate, counted, progress.stepText.length + toolInputChars);
    addUsage(progress.usage, cut);
    addUsage(progress.uncharged, cut);
    throw err;
  } finally {
    await noted;
    deps.calls.forget(events);
  }
  addUsage(progress.usage, result.usage);
  addUsage(progress.uncharged, result.usage);
  ctx.signal.throwIfAborted();
  if (progress.openTextId) events.emit({ type: 'text-end', id: textId });
  progress.openTextId = null;
  progress.lastInputTokens = result.usage.inputTokens;
  recordSaving(ctx, progress, result.usage.inputTokens);
  progress.steps = index + 1;
  progress.providerResponseId = result.providerResponseId;
  const finishReason: FinishReason = result.finishReason === 'length' || result.finishReason === 'max_tokens' ? 'length' : 'stop';
  return { text: progress.stepText, toolCalls: result.toolCalls, usage: result.usage, providerResponseId: result.providerResponseId, finishReason, startedAt };
}

/** A model's call as the loop keeps it: parsed and checked against its tool, with its delivery key. */
async function checkCall(
  schemas: SchemaChecker,
  tools: (ToolDefinition | McpTool | WorkspaceTool)[],
  call: { toolCallId: string; toolName: string; rawInput: string },
): Promise<StepToolCall> {
  const tool = tools.find((candidate) => candidate.name === call.toolName);
  const runByServer = tool && ('server' in tool || 'workspace' in tool || tool.url !== undefined);
  const base = {
    toolCallId: call.toolCallId,
    toolName: call.toolName,
    rawInput: call.rawInput,
    idempotencyKey: `msg_${randomUUID()}`,
    kind: runByServer ? ('server' as const) : ('client' as const),
    ...(tool && 'url' in tool && tool.url && tool.requireApproval ? { needsApproval: true } : {}),
  };
  const unstorable = unstorableReason(call.rawInput);
  if (unstorable) return { ...base, rawInput: storableText(call.rawInput), inputError: `The input of ${call.toolName} contains ${unstorable}.` };
  let input: unknown;
  try {
    input = JSON.parse(call.rawInput || '{}');
  } catch {
    return { ...base, inputError: `The input of ${call.toolName} is not valid JSON.` };
  }
  const unstorableInput = findUnstorableText(input);
  if (unstorableInput) return { ...base, inputError: `The input of ${call.toolName} contains ${unstorableInput.reason} at ${unstorableInput.path}.` };
  if (!tool) return { ...base, input, inputError: `There is no tool named ${call.toolName}.` };
  const mismatch = await schemas.mismatch(tool.inputSchema, input);
  if (mismatch) return { ...base, input, inputError: `Invalid input for ${call.toolName}: ${mismatch}` };
  return { ...base, input };
}

/** A call's input chunk (available, or the input error), as the persisted replay sends it too. */
const inputChunk = (call: StepToolCall) => toolChunks(toolPartOf(call, undefined))[0]!;

/** A call's output chunk once its result is known. */
const outputChunk = (call: StepToolCall, outcome: ToolOutcome) => toolChunks(toolPartOf(call, outcome)).at(-1)!;

/**
 * Runs the step's server calls that have no persisted result and may run: the workspace's built-in
 * calls one after another (they share its files; each one's changes are persisted with its result),
 * the others concurrently, each result persisted as it arrives.
 */
async function executeCalls(ctx: LoopContext, step: PersistedStep): Promise<void> {
  const missing = step.toolCalls.filter(
    (call) => call.kind === 'server' && !(call.toolCallId in step.results) && (!call.needsApproval || step.approvals[call.toolCallId]?.approved),
  );
  if (missing.length === 0) return;
  const inWorkspace = ctx.workspace ? missing.filter((call) => isWorkspaceToolName(call.toolName)) : [];
  const elsewhere = missing.filter((call) => !inWorkspace.includes(call));
  const sequential = (async () => {
    for (const call of inWorkspace) await executeWorkspaceCall(ctx, step, call);
  })();
  let concurrent: Promise<PromiseSettledResult<void>[]> = Promise.resolve([]);
  if (elsewhere.length > 0) {
    const runyardSecret = ctx.deps.config.RUNYARD_SECRET;
    ctx.toolSecrets ??=
      (ctx.sealedToolSecrets && openRow(ctx.sealedToolSecrets, runyardSecret)) || (await accountToolSecrets(ctx.deps.db, ctx.run.accountId, runyardSecret));
    const secrets = ctx.toolSecrets;
    concurrent = Promise.allSettled(elsewhere.map((call) => executeCall(ctx, step, call, secrets)));
  }
  const [workspaceDone, settled] = await Promise.allSettled([sequential, concurrent]);
  if (workspaceDone.status === 'rejected') throw workspaceDone.reason;
  const failure = settled.status === 'fulfilled' ? settled.value.find((result) => result.status === 'rejected') : settled;
  if (failure) throw (failure as PromiseRejectedResult).reason;
}

/** A built-in workspace call: run in the sandbox, then its result and the workspace's changes persisted together. */
async function executeWorkspaceCall(ctx: LoopContext, step: PersistedStep, call: StepToolCall): Promise<void> {
  const { deps, run } = ctx;
  const { open, manager } = ctx.workspace!;
  const name = call.toolName as WorkspaceToolName;
  const startedAt = new Date();
  const mutates = changesWorkspace(name);
  if (mutates) manager.markDirty(open);
  let outcome: ToolOutcome = await inToolSpan(call, 'server', async (span) => {
    const result = storableJson(
      await runWorkspaceTool(
        { workspace: open, driver: manager.driver, config: deps.config, runKey: ctx.apiKey, apiBaseUrl: deps.apiBaseUrl, signal: ctx.signal },
        name,
        call.input,
      ),
    );
    if ('error' in result) failSpan(span, undefined, result.error);
    return result;
  });
  ctx.signal.throwIfAborted();
  const endedAt = new Date();
  deps.metrics.toolCalls.inc({ kind: 'workspace', outcome: 'error' in outcome ? 'error_result' : 'output' });
  deps.metrics.toolCallDuration.observe({ kind: 'workspace' }, (endedAt.getTime() - startedAt.getTime()) / 1000);
  const timing = { startedAt: startedAt.toISOString(), endedAt: endedAt.toISOString(), tries: 1 };
  const recordPlain = (plain: unknown) => ctx.steps.recordResult(run.id, run.attempt, step.step, call.toolCallId, plain as ToolOutcome, timing);
  let recorded: boolean;
  if (mutates) {
    const persisted = await manager.persistCall(
      open,
      { runId: run.id, attempt: run.attempt, step: step.step, toolCallId: call.toolCallId, timing },
      outcome,
      recordPlain,
    );
    deps.metrics.workspaceBytesPersisted.inc(persisted.bytes);
    recorded = persisted.recorded;
    outcome = persisted.outcome as ToolOutcome;
  } else recorded = await recordPlain(outcome);
  if (!recorded) throw new FencedError(run.id, run.attempt);
  step.results[call.toolCallId] = outcome;
  ctx.events.emit(outputChunk(call, outcome));
}

async function executeCall(ctx: LoopContext, step: PersistedStep, call: StepToolCall, secrets: ToolSecrets): Promise<void> {
  const mcpTool = ctx.mcp?.tools.find((candidate) => candidate.name === call.toolName);
  const startedAt = new Date();
  const { outcome, tries } = await inToolSpan(call, mcpTool ? 'mcp' : 'server', async (span) => {
    const called = await callTool(ctx, step, call, secrets, mcpTool);
    if ('error' in called.outcome) failSpan(span, undefined, called.outcome.error);
    return called;
  });
  const timing = { startedAt: startedAt.toISOString(), endedAt: new Date().toISOString(), tries };
  if (!(await ctx.steps.recordResult(ctx.run.id, ctx.run.attempt, step.step, call.toolCallId, outcome, timing)))
    throw new FencedError(ctx.run.id, ctx.run.attempt);
  step.results[call.toolCallId] = outcome;
  ctx.events.emit(outputChunk(call, outcome));
}

/** Calls the tool (an MCP server's, or a server tool's url): its outcome and how many tries it took. */
async function callTool(
  ctx: LoopContext,
  step: PersistedStep,
  call: StepToolCall,
  secrets: ToolSecrets,
  mcpTool: McpTool | undefined,
): Promise<{ outcome: ToolOutcome; tries: number }> {
  const { deps, run } = ctx;
  const tool = run.tools.find((candidate) => candidate.name === call.toolName);
  let outcome: ToolOutcome;
  let tries = 1;
  if (mcpTool) {
    const started = Date.now();
    outcome = storableJson(
      await ctx.mcp!.call(mcpTool, call.input, { runId: run.id, idempotencyKey: call.idempotencyKey }, deps.config.TOOL_TIMEOUT_MS, ctx.signal),
    );
    deps.metrics.toolCalls.inc({ kind: 'mcp', outcome: 'error' in outcome ? 'error_result' : 'output' });
    deps.metrics.toolCallDuration.observe({ kind: 'mcp' }, (Date.now() - started) / 1000);
  } else if (!tool?.url) {
    outcome = { error: `${call.toolName} cannot be executed by the server.` };
  } else {
    const started = Date.now();
    const called = await callServerTool(
      {
        url: tool.url,
        body: { runId: run.id, chatId: run.chatId, toolCallId: call.toolCallId, toolName: call.toolName, input: call.input },
        idempotencyKey: call.idempotencyKey,
        apiKey: ctx.apiKey,
        apiUrl: deps.apiBaseUrl,
        secrets,
        signal: ctx.signal,
      },
      {
        timeoutMs: deps.config.TOOL_TIMEOUT_MS,
        maxOutputBytes: deps.config.TOOL_MAX_OUTPUT_BYTES,
        maxTries: deps.config.TOOL_MAX_TRIES,
        retryBaseMs: deps.config.TOOL_RETRY_BASE_MS,
      },
    );
    outcome = storableJson(called.outcome);
    tries = called.tries;
    deps.metrics.toolCalls.inc({ kind: 'server', outcome: called.kind });
    deps.metrics.toolCallDuration.observe({ kind: 'server' }, (Date.now() - started) / 1000);
    deps.logger.info('tool called', { toolCallId: call.toolCallId, step: step.step, outcome: called.kind, tries: called.tries });
  }
  return { outcome, tries };
}

function closeStep(ctx: LoopContext, progress: LoopProgress, history: ModelMessage[], step: PersistedStep): void {
  ctx.events.emit({ type: 'finish-step' });
  const parts = stepParts(step);
  progress.parts.push(...parts);
  history.push(...stepMessages(parts));
  progress.step = null;
  progress.stepText = '';
  progress.steps = Math.max(progress.steps, step.step + 1);
}

/** What a cancelled attempt keeps: finished steps, and the step in progress with its unfinished calls closed. */
export function interruptedParts(ctx: Pick<LoopContext, 'events'>, progress: LoopProgress): MessagePart[] {
  if (progress.openTextId) ctx.events.emit({ type: 'text-end', id: progress.openTextId });
  if (progress.step) {
    for (const call of progress.step.toolCalls) {
      if (!(call.toolCallId in progress.step.results)) ctx.events.emit({ type: 'tool-output-error', toolCallId: call.toolCallId, errorText: CANCELLED_CALL });
    }
    return [...progress.parts, ...stepParts(progress.step, CANCELLED_CALL)];
  }
  return [...progress.parts, ...(progress.stepText ? [{ type: 'step-start' as const }, { type: 'text' as const, text: progress.stepText }] : [])];
}

/** The account reached a spend limit: the run ends failed, its output kept (not retried: the next attempt would be refused too). */
export class UsageLimitReached extends RunError {
  constructor(readonly reached: LimitReached) {
    super(
      'usage_limit_exceeded',
      `the account has used ${reached.consumed} of its ${reached.limit} ${reached.kind === 'tokens' ? 'tokens' : 'micro-dollars'} for this ${reached.period}`,
      false,
    );
  }
}

/** Before each model call: a run of an account with spend limits stops once a limit is reached (SPEC section 14). */
async function checkSpendLimits(ctx: LoopContext): Promise<void> {
  if (!ctx.accountSettings.hasLimits) return;
  const [row] = await ctx.deps.sql.rows<{ reached: LimitReached | null }>(LIMIT_REACHED, [ctx.run.accountId]);
  if (!row?.reached) return;
  ctx.deps.metrics.usageLimitRefusals.inc({ kind: row.reached.kind, where: 'model_call' });
  throw new UsageLimitReached(row.reached);
}

/** How long a run waits when other calls of its account hold what is left of its limits. */
const SPEND_WAIT_MS = 1_000;

/**
 * Reserves the call's worst case against the account's limits (SPEC section 21; accounts without
 * limits skip it): the output it may have, or — nothing fits — a wait for other calls to settle
 * (their reservations hold the rest), or the end of the run when the limit itself is reached.
 */
async function reserveForCall(ctx: LoopContext, inputTokens: number): Promise<number | undefined> {
  if (!ctx.accountSettings.hasLimits) return undefined;
  const { run, deps } = ctx;
  const reservation = await reserveSpend(deps.sql, {
    accountId: run.accountId,
    runId: run.id,
    model: run.model,
    inputTokens,
    maxOutputTokens: run.maxOutputTokens,
    leaseMs: deps.config.PROVIDER_TIMEOUT_MS + 60_000,
  });
  if (reservation.reserved) return reservation.maxOutputTokens;
  if (reservation.held) {
    deps.metrics.rateLimitWaits.inc({ model: modelLabel(run.model), reason: 'spend' });
    throw new WaitForCapacity(SPEND_WAIT_MS, 'spend');
  }
  deps.metrics.usageLimitRefusals.inc({ kind: reservation.reached.kind, where: 'model_call' });
  throw new UsageLimitReached(reservation.reached);
}

/**
 * The model has no fleet-wide capacity now (MODEL_RATE_LIMITS, or paused after a provider 429): the
 * attempt hands the run back to the queue until there is, holding no worker slot meanwhile (SPEC
 * section 15). It resumes from its durable steps.
 */
export class WaitForCapacity extends Error {
  override name = 'WaitForCapacity';
  constructor(
    readonly waitMs: number,
    readonly reason: 'rpm' | 'tpm' | 'paused' | 'spend',
  ) {
    super(`no capacity for the model for ${waitMs} ms (${reason})`);
  }
}

async function waitForCapacity(ctx: LoopContext, tokens: number | (() => number)): Promise<void> {
  const capacity = await ctx.deps.rateLimits.reserve(ctx.run.model, tokens);
  if (!('reason' in capacity)) return;
  ctx.deps.metrics.rateLimitWaits.inc({ model: modelLabel(ctx.run.model), reason: capacity.reason });
  throw new WaitForCapacity(capacity.waitMs, capacity.reason);
}

/** What a call counts against a tokens-per-minute limit before the provider says: about a token per 4 characters of its input, and its output cap. */
function estimatedTokens(ctx: LoopContext, history: ModelMessage[]): number {
  const input = JSON.stringify([ctx.run.system ?? '', ctx.chat.earlierModelMessages, history]).length / 4;
  return Math.ceil(input + (ctx.run.maxOutputTokens ?? 0));
}

/** The run's system prompt, with its workspace's AGENTS.md after it (SPEC section 18). */
function systemPrompt(ctx: LoopContext): string | undefined {
  const agentsMd = ctx.workspace?.open.agentsMd;
  if (!agentsMd) return ctx.run.system ?? undefined;
  const fromWorkspace = `The workspace's AGENTS.md (/workspace/AGENTS.md):\n${agentsMd}`;
  return ctx.run.system ? `${ctx.run.system}\n\n${fromWorkspace}` : fromWorkspace;
}

/** A request's input tokens as runyard estimates them before the provider counts: about four characters a token. */
const estimatedInputTokens = (request: Pick<ProviderRequest, 'messages' | 'tools' | 'system'>): number =>
  Math.ceil(JSON.stringify([request.system ?? '', request.messages, request.tools]).length / 4);

/**
 * What a model call cut short used (SPEC section 14: nothing escapes accounting): the provider's own
 * counts where it sent them, else an estimate — the request's size for its input, what it streamed
 * (text and tool input) for its output, about four characters a token — marked `estimated`.
 */
export function cutCallUsage(inputEstimate: number, counted: Partial<Usage>, streamedChars: number): Usage {
  const inputTokens = counted.inputTokens || inputEstimate;
  const outputTokens = Math.max(counted.outputTokens ?? 0, Math.ceil(streamedChars / 4));
  return {
    inputTokens,
    outputTokens,
    cachedInputTokens: counted.cachedInputTokens ?? 0,
    reasoningTokens: counted.reasoningTokens ?? 0,
    totalTokens: inputTokens + outputTokens,
    estimated: true,
  };
}

function addUsage(total: Usage, more: Usage): void {
  if (more.estimated) total.estimated = true;
  total.inputTokens += more.inputTokens;
  total.outputTokens += more.outputTokens;
  total.cachedInputTokens += more.cachedInputTokens;
  total.reasoningTokens += more.reasoningTokens;
  total.totalTokens += more.totalTokens;
}
