import type { Db } from '../../shared/infra/db.js';
import { summary } from './stats.js';
import { apiClient } from './apiClient.js';

/** `call exec {...}` steps for local/echo, one per line group. */
const execSteps = (commands: string[]) => commands.map((command) => `call exec ${JSON.stringify({ command })}`).join('\nthen\n');

type StepRow = { step: number; model_started_at: Date; created_at: Date; result_timings: Record<string, { startedAt: string; endedAt: string }> };

async function runAndWait(db: Db, post: () => Promise<{ runId: string }>): Promise<string> {
  const { runId } = await post();
  for (;;) {
    const run = await db.run.findUnique({ where: { id: runId }, select: { status: true, errorMessage: true } });
    if (run?.status === 'completed') return runId;
    if (run?.status === 'failed' || run?.status === 'cancelled') throw new Error(`workspace bench run ${run.status}: ${run.errorMessage}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Per step of a run: the step's cycle (its model call started → the next step's model call started:
 * the tool call end to end, its persistence included) and the sandbox's own part (the exec call's
 * start → end), from the timeline the run persisted.
 */
async function stepTimes(db: Db, runId: string, fromStep: number) {
  const rows = await db.$queryRaw<StepRow[]>`
    SELECT step, model_started_at, created_at, result_timings FROM run_steps WHERE run_id = ${runId}::uuid ORDER BY step`;
  const cycles: number[] = [];
  const sandbox: number[] = [];
  for (let i = fromStep; i + 1 < rows.length; i++) {
    cycles.push(rows[i + 1]!.model_started_at.getTime() - rows[i]!.model_started_at.getTime());
    for (const timing of Object.values(rows[i]!.result_timings)) sandbox.push(Date.parse(timing.endedAt) - Date.parse(timing.startedAt));
  }
  return { cycles, sandbox };
}

/**
 * The workspace phase (SPEC section 18), on the bench's api and workers, one run at a time:
 * `exec` of `true` end to end through a tool call (p50/p99) and the sandbox's share of it (a call
 * that changed nothing is persisted without a new version); and the cost of persisting a step's
 * changes against the workspace's size (1, 10 and 50 MiB of random bytes, then steps that each
 * change one small file).
 */
export async function workspacePhase(base: string, key: string, db: Db, runs: number) {
  const cycles: number[] = [];
  const sandbox: number[] = [];
  const trueRun = apiClient(base, key, JSON.stringify({ prompt: execSteps(Array.from({ length: 10 }, () => 'true')), workspace: true, maxSteps: 20 }));
  await runAndWait(db, () => trueRun.post());
  for (let i = 0; i < runs; i++) {
    const times = await stepTimes(db, await runAndWait(db, () => trueRun.post()), 0);
    cycles.push(...times.cycles);
    sandbox.push(...times.sandbox);
  }
  trueRun.close();
  const bySize: { sizeMiB: number; stepMs: ReturnType<typeof summary>; sandboxMs: ReturnType<typeof summary> }[] = [];
  for (const sizeMiB of [1, 10, 50]) {
    const filled = apiClient(
      base,
      key,
      JSON.stringify({
        // Each later step changes one small file: the whole workspace is archived again as its new version.
        prompt: execSteps([`head -c ${sizeMiB * 1024 * 1024} /dev/urandom > data.bin`, ...Array.from({ length: 5 }, () => 'date +%s%N > stamp')]),
        workspace: true,
        maxSteps: 20,
      }),
    );
    const times = await stepTimes(db, await runAndWait(db, () => filled.post()), 1);
    filled.close();
    bySize.push({ sizeMiB, stepMs: summary(times.cycles), sandboxMs: summary(times.sandbox) });
  }
  return { runs, stepsPerRun: 10, execTrueStepMs: summary(cycles), sandboxMs: summary(sandbox), persistBySize: bySize };
}
