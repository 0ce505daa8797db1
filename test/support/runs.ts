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
