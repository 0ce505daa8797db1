import type { Db } from '../../shared/infra/db.js';
import { round, summary } from './stats.js';
import { agentRunBody, driveAgentRuns, stepOverheadSummary, type AgentToolServer } from './agentPhase.js';
import { AGENT_RUNS, AGENT_IN_FLIGHT } from './options.js';
import { lastRunSeq, onAClock, waitForCompletedRuns } from './support.js';
import { apiClient } from './apiClient.js';
import { cpuMsPerItem, cpuSnapshot } from './cpu.js';

/**
 * The agent phase (SPEC section 22): tool-calling runs end to end. First as fast as they go
 * (`--agent-in-flight` runs in flight, closed loop): the rate that saturates the machine. Then at
 * half that rate, started on a clock (open loop, as callers do): the per-step overhead the target
 * is set at. The CPU a step costs across the api, workers, Postgres and Redis is taken where
 * nothing idles (a slow rate charges each run the processes' timers and polls), from runs driven the
 * same way (50 in flight, as fast as they go) that differ only in their steps: a 10-step run's CPU
 * less a 2-step run's, over the 8 steps between them — a tool call and the model call after it
 * each. (Not against the plain runs of phase 5: those come in a burst whose POSTs, claims and
 * completions batch far better than runs started one at a time as others end, and a difference of
 * one step drowns in this host's noise.) The older figure, a 3-step run less a plain run over its
 * two steps, is kept beside it.
 */
export async function agentPhase(base: string, key: string, tools: AgentToolServer, db: Db, measured: { pid: number; kind: string }[], plainRunCpuMs: number) {
  const client = apiClient(base, key, agentRunBody(tools.url));
  const post = async () => (await client.post()).runId;
  // Warm the loop's code paths up first, as the other phases are.
  await driveAgentRuns(post, tools, Math.min(500, AGENT_RUNS), AGENT_IN_FLIGHT);

  // A step's CPU: the same runs with 1 call and with 9, as fast as they go.
  const cpuOfRuns = async (calls: number, runs: number) => {
    const runsWith = apiClient(base, key, agentRunBody(tools.url, calls));
    const seq = await lastRunSeq(db);
    const before = await cpuSnapshot(measured);
    const ids = await driveAgentRuns(async () => (await runsWith.post()).runId, tools, runs, AGENT_IN_FLIGHT);
    await waitForCompletedRuns(db, seq, ids.length, `the ${calls + 1}-step agent runs`);
    runsWith.close();
    return cpuMsPerItem(before, await cpuSnapshot(measured), ids.length);
  };
  const twoStepCpu = await cpuOfRuns(1, AGENT_RUNS);
  const tenStepCpu = await cpuOfRuns(9, Math.max(1, Math.round(AGENT_RUNS / 4)));

  tools.stepGaps.length = 0;
  let afterSeq = await lastRunSeq(db);
  const started = Date.now();
  let cpuBefore = await cpuSnapshot(measured);
  const saturatedIds = await driveAgentRuns(post, tools, AGENT_RUNS, AGENT_IN_FLIGHT);
  await waitForCompletedRuns(db, afterSeq, saturatedIds.length, 'the agent runs');
  const saturatedCpu = cpuMsPerItem(cpuBefore, await cpuSnapshot(measured), saturatedIds.length);
  const saturatedRunsPerSecond = saturatedIds.length / ((lastFinishedAt(await finishedAt(db, saturatedIds)) - started) / 1000);
  const saturatedStepOverheadMs = stepOverheadSummary(tools.stepGaps);
  const steps = await db.run.aggregate({ where: { id: { in: saturatedIds } }, _min: { steps: true }, _max: { steps: true } });

  const halfRate = saturatedRunsPerSecond / 2;
  const halfRuns = Math.max(1, Math.round(AGENT_RUNS / 2));
  tools.stepGaps.length = 0;
  afterSeq = await lastRunSeq(db);
  cpuBefore = await cpuSnapshot(measured);
  const halfIds = await startOnAClock(post, tools, halfRuns, halfRate);
  await waitForCompletedRuns(db, afterSeq, halfIds.length, 'the agent runs at half load');
  const halfLoadCpu = cpuMsPerItem(cpuBefore, await cpuSnapshot(measured), halfIds.length);
  const parts = await stepParts(db, halfIds);
  const total = (cpu: Record<string, number>) => Object.values(cpu).reduce((sum, ms) => sum + ms, 0);
  const agentRunCpuMs = total(saturatedCpu);
  client.close();
  return {
    runs: saturatedIds.length,
    inFlight: AGENT_IN_FLIGHT,
    stepsPerRun: steps._min.steps === steps._max.steps ? steps._min.steps : `${steps._min.steps}–${steps._max.steps}`,
    runsPerSecond: round(saturatedRunsPerSecond, 1),
    saturatedStepOverheadMs,
    cpuMsPerRun: saturatedCpu,
    twoStepCpuMsPerRun: twoStepCpu,
    tenStepCpuMsPerRun: tenStepCpu,
    halfLoad: { runs: halfIds.length, runsPerSecond: round(halfRate, 1), cpuMsPerRun: halfLoadCpu },
    stepOverheadMs: stepOverheadSummary(tools.stepGaps),
    stepPartsMs: parts,
    cpuMsPerStep: round((total(tenStepCpu) - total(twoStepCpu)) / 8, 3),
    cpuMsPerStepVsPlainRun: round((agentRunCpuMs - plainRunCpuMs) / 2, 3),
  };
}

/** Starts `runs` agent runs at `perSecond`, whatever those already started are doing; resolves once each has had its last tool call answered. */
const startOnAClock = (post: () => Promise<string>, tools: AgentToolServer, runs: number, perSecond: number): Promise<string[]> =>
  onAClock(runs, perSecond, async () => {
    const runId = await post();
    await tools.onSecondAnswer(runId);
    return runId;
  });

const finishedAt = (db: Db, runIds: string[]) => db.$queryRaw<{ last: Date }[]>`SELECT max(finished_at) AS last FROM runs WHERE id = ANY(${runIds}::uuid[])`;
const lastFinishedAt = (rows: { last: Date }[]) => rows[0]!.last.getTime();

/**
 * Where a step's time goes, from the run timeline's own timestamps (the worker's clock, ms
 * resolution): a tool's answer → the next model call starts (persisting the result, the capacity
 * check, the call's note), and the model call starts → the next tool call starts (the model —
 * local/echo answers at once —, checking the call's input, persisting the step).
 */
async function stepParts(db: Db, runIds: string[]) {
  const rows = await db.$queryRaw<{ run_id: string; step: number; model_ms: number | null; timings: Record<string, { startedAt: string; endedAt: string }> }[]>`
    SELECT run_id::text, step, (extract(epoch FROM model_started_at) * 1000)::float8 AS model_ms, result_timings AS timings
    FROM run_steps WHERE run_id = ANY(${runIds}::uuid[]) ORDER BY run_id, episode, step`;
  const resultToModelCall: number[] = [];
  const modelCallToToolCall: number[] = [];
  for (let i = 1; i < rows.length; i++) {
    const [before, step] = [rows[i - 1]!, rows[i]!];
    if (before.run_id !== step.run_id || step.model_ms === null) continue;
    const answered = Object.values(before.timings).map((t) => Date.parse(t.endedAt));
    if (answered.length > 0) resultToModelCall.push(step.model_ms - Math.max(...answered));
    const called = Object.values(step.timings).map((t) => Date.parse(t.startedAt));
    if (called.length > 0) modelCallToToolCall.push(Math.min(...called) - step.model_ms);
  }
  return { resultToModelCall: summary(resultToModelCall), modelCallToToolCall: summary(modelCallToToolCall) };
}
