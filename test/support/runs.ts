import type { Db } from '../../shared/infra/db.js';
import request from 'supertest';
import type { Express } from 'express';
import type { ApiDeps } from '../../api/deps.js';
import { waitFor } from './harness.js';

export async function postRun(app: Express, key: string, body: Record<string, unknown>, headers: Record<string, string> = {}) {
  return request(app).post('/api/chat/runs').set('authorization', `Bearer ${key}`).set(headers).send(body);
}

/** Starts a run and returns its id, failing the test if the api did not accept it. */
export async function startRunOk(app: Express, key: string, body: Record<string, unknown>): Promise<string> {
  const res = await postRun(app, key, body);
  if (res.status !== 202) throw new Error(`expected 202, got ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.runId as string;
}

export async function waitForRunStatus(deps: ApiDeps, runId: string, statuses: string[], timeoutMs = 20_000) {
  return waitFor(
    async () => {
      const run = await deps.db.run.findUnique({ where: { id: runId } });
      return run && statuses.includes(run.status) ? run : null;
    },
    { timeoutMs, what: `run ${runId} to become ${statuses.join('/')}` },
  );
}

/** A client tool the fake models call with `[[call1:hold:{}]]`: a run that calls it parks until answerPendingCalls. */
export const HOLD_TOOL = { name: 'hold', description: 'waits for the test', inputSchema: { type: 'object' } };

/**
 * Starts a run (on the fake OpenAI model) that parks in requires_action on HOLD_TOOL and stays
 * active until answered: a busy chat that does not depend on timing.
 */
export async function startParkedRun(app: Express, deps: ApiDeps, key: string, extra: Record<string, unknown> = {}) {
  const runId = await startRunOk(app, key, { prompt: 'hold on [[call1:hold:{}]]', model: 'openai/gpt-4o-mini', tools: [HOLD_TOOL], ...extra });
  const run = await waitForRunStatus(deps, runId, ['requires_action']);
  return { runId, chatId: run.chatId };
}

/** Answers every pending call of a parked run (it then goes on to the end). */
export async function answerPendingCalls(app: Express, key: string, runId: string) {
  const auth = { authorization: `Bearer ${key}` };
  const pending = (await request(app).get(`/api/chat/runs/${runId}`).set(auth)).body.pendingToolCalls as { toolCallId: string }[];
  const res = await request(app)
    .post(`/api/chat/runs/${runId}/tool-results`)
    .set(auth)
    .send({ results: pending.map((call) => ({ toolCallId: call.toolCallId, output: 'ok' })) });
  if (res.status !== 202) throw new Error(`expected 202, got ${res.status} ${JSON.stringify(res.body)}`);
}

/** The runs' start order (by the time their first attempt was claimed). */
export async function startOrder(db: Db, runIds: string[]) {
  const runs = await db.run.findMany({
    where: { id: { in: runIds } },
    select: { id: true, accountId: true, priority: true, createdAt: true, startedAt: true, finishedAt: true },
  });
  return runs.sort((a, b) => a.startedAt!.getTime() - b.startedAt!.getTime());
}

/** The most runs that were running at the same moment. */
export function mostAtOnce(runs: { startedAt: Date | null; finishedAt: Date | null }[]): number {
  const edges = runs.flatMap((run) => [
    { at: run.startedAt!.getTime(), delta: 1 },
    { at: run.finishedAt!.getTime(), delta: -1 },
  ]);
  edges.sort((a, b) => a.at - b.at || a.delta - b.delta);
  let now = 0;
  let most = 0;
  for (const edge of edges) most = Math.max(most, (now += edge.delta));
  return most;
}
