import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { percentile, round, summary } from './stats.js';

/**
 * The agent phase: 3-step runs on local/echo (call, then call again, then answer) against a tool
 * server in this process that answers at once. Per-step overhead is what the loop costs between
 * steps: from the moment the tool finished answering step 1's call to the moment step 2's call
 * reached it (persisting the result, the model call, persisting the next step, signing and
 * sending) — measured on this process's clock at both ends.
 */
export type AgentToolServer = { url: string; close: () => Promise<void>; stepGaps: number[]; onSecondAnswer: (runId: string) => Promise<void> };

export async function startAgentToolServer(): Promise<AgentToolServer> {
  const firstAnsweredAt = new Map<string, number>();
  const stepGaps: number[] = [];
  const waiting = new Map<string, () => void>();
  // A run can reach its second call before this process has read the POST's answer.
  const secondAnswered = new Set<string>();
  const server = http.createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (raw += chunk));
    req.on('end', () => {
      const arrivedAt = performance.now();
      const call = JSON.parse(raw) as { runId: string; input: { n: number } };
      if (call.input.n === 2) {
        const answered = firstAnsweredAt.get(call.runId);
        if (answered !== undefined) stepGaps.push(arrivedAt - answered);
        firstAnsweredAt.delete(call.runId);
      }
      res.on('finish', () => {
        if (call.input.n === 1) firstAnsweredAt.set(call.runId, performance.now());
        else {
          secondAnswered.add(call.runId);
          waiting.get(call.runId)?.();
        }
      });
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ output: { n: call.input.n } }));
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/tools/`,
    stepGaps,
    onSecondAnswer: (runId) =>
      new Promise<void>((resolve) => {
        const done = () => {
          waiting.delete(runId);
          secondAnswered.delete(runId);
          resolve();
        };
        if (secondAnswered.has(runId)) done();
        else waiting.set(runId, done);
      }),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * A 3-step run's body (call, call again, answer), whose two calls are timed. `calls` other than 2
 * gives the run that many calls, untimed, the last one ending it (`n` 2): the runs a step's CPU is
 * measured with (a 10-step run less a 2-step run).
 */
export const agentRunBody = (toolUrl: string, calls = 2) =>
  JSON.stringify({
    prompt:
      calls === 2
        ? 'call bench_tool {"n":1}\nthen\ncall bench_tool {"n":2}'
        : [...Array.from({ length: calls - 1 }, () => 'call bench_tool {"n":3}'), 'call bench_tool {"n":2}'].join('\nthen\n'),
    tools: [{ name: 'bench_tool', inputSchema: { type: 'object', properties: { n: { type: 'number' } } }, url: `${toolUrl}bench_tool` }],
  });

/** Keeps `inFlight` agent runs going until `runs` were started; a slot frees when its run's last tool call is answered. */
export async function driveAgentRuns(post: () => Promise<string>, tools: AgentToolServer, runs: number, inFlight: number): Promise<string[]> {
  const runIds: string[] = [];
  let started = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (started < runs) {
        started++;
        const runId = await post();
        runIds.push(runId);
        await tools.onSecondAnswer(runId);
      }
    }),
  );
  return runIds;
}

export const stepOverheadSummary = (gaps: number[]) => ({ ...summary(gaps), p90: round(percentile(gaps, 90)) });
