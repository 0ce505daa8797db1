import type { Db } from '../../shared/infra/db.js';
import { round } from './stats.js';
import { agentRunBody, driveAgentRuns, stepOverheadSummary, type AgentToolServer } from './agentPhase.js';
import { AGENT_RUNS, AGENT_IN_FLIGHT } from './options.js';
import { lastRunSeq, waitForCompletedRuns } from './support.js';
import { apiClient } from './apiClient.js';

/** The agent phase: tool-calling runs end to end, and the loop's overhead per step. */

export async function agentPhase(base: string, key: string, tools: AgentToolServer, db: Db) {
  const client = apiClient(base, key, agentRunBody(tools.url));
  const post = async () => (await client.post()).runId;
  // Warm the loop's code paths up first, as the other phases are.
  await driveAgentRuns(post, tools, Math.min(500, AGENT_RUNS), AGENT_IN_FLIGHT);
  tools.stepGaps.length = 0;
  const afterSeq = await lastRunSeq(db);
  const started = Date.now();
  const runIds = await driveAgentRuns(post, tools, AGENT_RUNS, AGENT_IN_FLIGHT);
  await waitForCompletedRuns(db, afterSeq, runIds.length, 'the agent runs');
  const [{ last }] = (await db.$queryRaw<{ last: Date }[]>`SELECT max(finished_at) AS last FROM runs WHERE id = ANY(${runIds}::uuid[])`) as [{ last: Date }];
  const steps = await db.run.aggregate({ where: { id: { in: runIds } }, _min: { steps: true }, _max: { steps: true } });
  client.close();
  return {
    runs: runIds.length,
    inFlight: AGENT_IN_FLIGHT,
    stepsPerRun: steps._min.steps === steps._max.steps ? steps._min.steps : `${steps._min.steps}–${steps._max.steps}`,
    runsPerSecond: round(runIds.length / ((last.getTime() - started) / 1000), 1),
    stepOverheadMs: stepOverheadSummary(tools.stepGaps),
  };
}
