import type { workspacePhase } from './workspacePhase.js';
import { TARGETS } from './options.js';
import { round } from './stats.js';
import type { LongChatsResult } from './longChatsPhase.js';
import type { TracingOverhead } from './tracingPhase.js';
import type { NoisyNeighbour } from './noisyNeighbourPhase.js';
import type { RetentionResult } from './retentionPhase.js';

/** The bench's report: the table it prints, CPU per item by kind. */

export const CPU_KINDS = ['api', 'workers', 'postgres', 'redis', 'bench'];
export const cpuRow = (cpu: Record<string, number>) =>
  CPU_KINDS.filter((kind) => cpu[kind] !== undefined)
    .map((kind) => `${kind} ${cpu[kind]!.toFixed(3)}`)
    .join(', ');

export function printTable(r: {
  rawBullmqJobsPerSecond: number;
  rawBullmqRoundsJobsPerSecond: number[];
  endToEndRunsPerSecond: number;
  ratio: number;
  postLatencyMs: { offeredRatePerSecond: number; p50: number; p99: number };
  queueToStartMs: { p50: number; p99: number };
  streamingOverheadMs: { n: number; p50: number; p99: number };
  workerRssMiB: { before: number[]; after: number[] };
  cpuMsPerRun: { endToEnd: Record<string, number>; atFixedRate: Record<string, number> };
  cpuBudgetMsPerRunAtTargetRatio: number;
  floors: { rawBullmqCpuMsPerJob: Record<string, number>; httpCpuMsPerPost: Record<string, number> };
  idleStreams: { streams: number; apiRedisConnections: number; apiRssBeforeMiB: number; apiRssWithStreamsMiB: number } | null;
  agent: {
    runs: number;
    inFlight: number;
    runsPerSecond: number;
    saturatedStepOverheadMs: StepOverhead;
    cpuMsPerRun: Record<string, number>;
    twoStepCpuMsPerRun: Record<string, number>;
    tenStepCpuMsPerRun: Record<string, number>;
    halfLoad: { runs: number; runsPerSecond: number; cpuMsPerRun: Record<string, number> };
    stepOverheadMs: StepOverhead;
    cpuMsPerStep: number;
    cpuMsPerStepVsPlainRun: number;
    stepPartsMs: { resultToModelCall: { p50: number; p99: number }; modelCallToToolCall: { p50: number; p99: number } };
  } | null;
  webhooks: {
    runs: number;
    delivered: number;
    deliveriesPerSecond: number;
    burstLatencyMs: { p50: number; p99: number };
    idle: { runs: number; ratePerSecond: number; delivered: number };
    latencyMs: { p50: number; p99: number };
  } | null;
  firstTokenOverheadMs: { runs: number; ratePerSecond: number; p50: number; p99: number } | null;
  memory: { inFlight: number; workerRssIdleMiB: number; workerRssInFlightMiB: number; kibPerInFlightRun: number } | null;
  rejectedRequests: { statuses: Record<string, number>; cpuMsPerRequest: Record<string, number> };
  longChats: LongChatsResult | null;
  workspaces: Awaited<ReturnType<typeof workspacePhase>> | null;
  tracing: TracingOverhead | null;
  noisyNeighbour: NoisyNeighbour | null;
  retention: RetentionResult | null;
}) {
  const rows: [string, string][] = [
    ['raw BullMQ no-op jobs/s (median of rounds)', `${r.rawBullmqJobsPerSecond} (${r.rawBullmqRoundsJobsPerSecond.join(', ')})`],
    ['end-to-end runs/s (POST → completed + persisted)', String(r.endToEndRunsPerSecond)],
    [`ratio (target ≥ ${TARGETS.ratioAtLeast})`, String(r.ratio)],
    [
      `POST latency p50 / p99 at ${r.postLatencyMs.offeredRatePerSecond}/s (target p99 < ${TARGETS.postP99UnderMs} ms)`,
      `${r.postLatencyMs.p50} / ${r.postLatencyMs.p99} ms`,
    ],
    ['queue-to-start p50 / p99', `${r.queueToStartMs.p50} / ${r.queueToStartMs.p99} ms`],
    [
      `streaming overhead p50 / p99 (${r.streamingOverheadMs.n} deltas; target p99 < ${TARGETS.streamingOverheadP99UnderMs} ms)`,
      `${r.streamingOverheadMs.p50} / ${r.streamingOverheadMs.p99} ms`,
    ],
    ['CPU ms per run, end to end', cpuRow(r.cpuMsPerRun.endToEnd)],
    [`CPU ms per run, at ${r.postLatencyMs.offeredRatePerSecond}/s`, cpuRow(r.cpuMsPerRun.atFixedRate)],
    ['CPU ms per run the ratio target leaves (all processes)', String(r.cpuBudgetMsPerRunAtTargetRatio)],
    ['floor: CPU ms per raw BullMQ no-op job', cpuRow(r.floors.rawBullmqCpuMsPerJob)],
    ['floor: CPU ms per POST to bare express + helmet', cpuRow(r.floors.httpCpuMsPerPost)],
    [
      `rejected requests (${Object.entries(r.rejectedRequests.statuses)
        .map(([status, count]) => `${count}× ${status}`)
        .join(', ')}): CPU ms each`,
      cpuRow(r.rejectedRequests.cpuMsPerRequest),
    ],
    ['worker RSS before → after', r.workerRssMiB.before.map((b, i) => `${b} → ${r.workerRssMiB.after[i]} MiB`).join(', ')],
  ];
  if (r.idleStreams) {
    rows.push([`${r.idleStreams.streams} idle SSE streams: api Redis connections`, String(r.idleStreams.apiRedisConnections)]);
    rows.push([`${r.idleStreams.streams} idle SSE streams: api RSS`, `${r.idleStreams.apiRssBeforeMiB} → ${r.idleStreams.apiRssWithStreamsMiB} MiB`]);
  }
  if (r.agent) {
    const a = r.agent;
    const gaps = (o: StepOverhead) => `${o.p50} / ${o.p90} / ${o.p99} ms (${o.n} steps)`;
    rows.push([`agent runs/s (3 steps, ${a.inFlight} in flight: saturated)`, String(a.runsPerSecond)]);
    rows.push([`agent per-step overhead p50 / p90 / p99, saturated`, gaps(a.saturatedStepOverheadMs)]);
    rows.push([
      `agent per-step overhead p50 / p90 / p99 at half that load, ${a.halfLoad.runsPerSecond} runs/s (tool answer → next step's call; target p99 < ${TARGETS.agentStepOverheadP99UnderMs} ms)`,
      gaps(a.stepOverheadMs),
    ]);
    rows.push([
      `  of which: tool answer → model call starts / model call starts → tool call starts, p50 / p99 (the timeline's ms)`,
      `${a.stepPartsMs.resultToModelCall.p50} / ${a.stepPartsMs.resultToModelCall.p99} ms, ${a.stepPartsMs.modelCallToToolCall.p50} / ${a.stepPartsMs.modelCallToToolCall.p99} ms`,
    ]);
    rows.push([`agent CPU ms per run, saturated / at half load`, `${cpuRow(a.cpuMsPerRun)} / ${cpuRow(a.halfLoad.cpuMsPerRun)}`]);
    rows.push([`agent CPU ms per 2-step / 10-step run, as fast as they go`, `${cpuRow(a.twoStepCpuMsPerRun)} / ${cpuRow(a.tenStepCpuMsPerRun)}`]);
    rows.push([
      `agent CPU ms per step, all processes (a 10-step run less a 2-step run, over 8; target ≤ ${TARGETS.agentCpuMsPerStepAtMost})`,
      String(a.cpuMsPerStep),
    ]);
    rows.push([`  the older measure: a 3-step run less a plain run (phase 5's burst), over 2`, String(a.cpuMsPerStepVsPlainRun)]);
  }
  if (r.webhooks) {
    rows.push([`webhooks: ${r.webhooks.delivered} of ${r.webhooks.runs} delivered once, deliveries/s`, String(r.webhooks.deliveriesPerSecond)]);
    rows.push(['webhook delivery latency p50 / p99 under that burst', `${r.webhooks.burstLatencyMs.p50} / ${r.webhooks.burstLatencyMs.p99} ms`]);
    const idle = r.webhooks.idle;
    rows.push([
      `webhook delivery latency p50 / p99, idle fleet (${idle.delivered} of ${idle.runs} at ${idle.ratePerSecond}/s; transition → receiver; target p50 < ${TARGETS.webhooksP50UnderMs}, p99 < ${TARGETS.webhooksP99UnderMs} ms)`,
      `${r.webhooks.latencyMs.p50} / ${r.webhooks.latencyMs.p99} ms`,
    ]);
  }
  if (r.firstTokenOverheadMs) {
    const f = r.firstTokenOverheadMs;
    rows.push([
      `first token p50 / p99 (POST → first text-delta over SSE at ${f.ratePerSecond}/s, less the provider's 0 ms; target p50 ≤ ${TARGETS.firstTokenP50UnderMs}, p99 ≤ ${TARGETS.firstTokenP99UnderMs} ms)`,
      `${f.p50} / ${f.p99} ms (${f.runs} runs)`,
    ]);
  }
  if (r.memory) {
    const m = r.memory;
    rows.push([
      `worker RSS per in-flight run (${m.inFlight} in flight; target ≤ ${TARGETS.kibPerInFlightRunAtMost} KiB)`,
      `${m.kibPerInFlightRun} KiB (${m.workerRssIdleMiB} → ${m.workerRssInFlightMiB} MiB)`,
    ]);
  }
  if (r.workspaces) {
    const w = r.workspaces;
    rows.push([
      `workspace: exec true through a tool call, end to end p50 / p99 (${w.runs} runs × ${w.stepsPerRun} steps)`,
      `${w.execTrueStepMs.p50} / ${w.execTrueStepMs.p99} ms`,
    ]);
    rows.push(['workspace: of which the sandbox (bwrap start to exit) p50 / p99', `${w.sandboxMs.p50} / ${w.sandboxMs.p99} ms`]);
    for (const size of w.persistBySize)
      rows.push([`workspace of ${size.sizeMiB} MiB: a step (its changes persisted) p50, sandbox p50`, `${size.stepMs.p50} ms, ${size.sandboxMs.p50} ms`]);
  }
  if (r.longChats) {
    const { chats, turns, compactAtPercent, compactions } = r.longChats;
    rows.push([`long chats (${chats} × ${turns} turns): ${compactions} compactions at ${compactAtPercent}% of the window`, 'without → with compaction']);
    for (const [i, plain] of r.longChats.plain.entries()) {
      const compacted = r.longChats.compacted[i]!;
      rows.push([
        `  turns ${plain.turns}: input tokens / CPU ms per run`,
        `${plain.inputTokensPerRun} / ${plain.cpuMsPerRun} → ${compacted.inputTokensPerRun} / ${compacted.cpuMsPerRun}`,
      ]);
    }
  }
  if (r.tracing) {
    const t = r.tracing;
    rows.push([
      `tracing: CPU ms per run off → on (every run sampled, ${t.spansPerRun} spans a run; target ≤ +15%)`,
      `${t.cpuMsPerRunOff} → ${t.cpuMsPerRunOn} (${t.overheadPercent >= 0 ? '+' : ''}${t.overheadPercent}%)`,
    ]);
  }
  if (r.noisyNeighbour) {
    const { fifo, fair, fleetRatio, weights } = r.noisyNeighbour;
    const ms = (s: { p50: number; p99: number }) => `${s.p50} / ${s.p99}`;
    rows.push(
      [
        `noisy neighbour: B's queue-to-start p50 / p99 ms, idle → under ${fair.floodRuns} of A's runs, FIFO`,
        `${ms(fifo.bIdleQueueToStartMs)} → ${ms(fifo.bFloodQueueToStartMs)} (${fifo.bRuns} runs of B; a run lasts ${fifo.runDurationMsP50} ms)`,
      ],
      [
        `noisy neighbour: the same, fair (target p99 ≤ idle p99 + one run)`,
        `${ms(fair.bIdleQueueToStartMs)} → ${ms(fair.bFloodQueueToStartMs)} (${fair.bRuns} runs of B; a run lasts ${fair.runDurationMsP50} ms)`,
      ],
      [
        `noisy neighbour: A's runs/s and the fleet's, FIFO → fair (target fleet ≥ 95% of FIFO)`,
        `${fifo.aRunsPerSecond} / ${fifo.fleetRunsPerSecond} → ${fair.aRunsPerSecond} / ${fair.fleetRunsPerSecond} (${round(fleetRatio * 100, 1)}%)`,
      ],
      [
        `weights ${weights.weights.join(', ')}: % of the runs started while all wait (target 25/25/50 ± 5)`,
        `${weights.startedPercent.join(' / ')} (${weights.runsCounted} runs)`,
      ],
    );
  }
  if (r.retention) {
    const t = r.retention;
    rows.push(
      [
        `retention: POST p99 without → during a prune of ${t.runs} aged runs (target ≤ 1.2×)`,
        `${t.postP99Ms.withoutPrune} → ${t.postP99Ms.duringPrune} ms (${t.postP99Ms.ratio}×, ${t.postsDuringPrune} POSTs)`,
      ],
      [
        'retention: the prune (rows deleted, rows/s, vacuum)',
        `${t.prune.chatsDeleted} chats, ${t.prune.rowsDeleted} rows in ${t.prune.seconds} s: ${t.prune.rowsPerSecond} rows/s; vacuum ${t.prune.vacuumMs} ms`,
      ],
      [
        'retention: history tables MiB, before → after each seed cycle (after its prune)',
        `${t.historyTablesMiB.beforeSeed} → ${t.historyTablesMiB.afterSeed.map((mib, i) => `${mib} (${t.historyTablesMiB.afterPrune[i]})`).join(' → ')}`,
      ],
    );
  }
  const width = Math.max(...rows.map(([k]) => k.length));
  process.stdout.write(`\n${rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n')}\n\n`);
}

type StepOverhead = { n: number; p50: number; p90: number; p99: number };
