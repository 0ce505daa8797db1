import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Db } from '../../shared/infra/db.js';
import { apiClient, postAsFastAsTheyGo } from './apiClient.js';
import { cpuMsPerItem, cpuSnapshot } from './cpu.js';
import { log } from './options.js';
import { spawnTs, type Spawned } from './processes.js';
import { startWorkers } from './runyardProcesses.js';
import { round } from './stats.js';
import { freePort, lastRunSeq, waitForCompletedRuns } from './support.js';

/**
 * Tracing's cost (SPEC section 16): the same runs end to end on a fresh api and workers without
 * tracing, then on a fresh set exporting every run's spans (the default sampler samples all) over
 * OTLP/HTTP to a receiver in the bench process. CPU per run of the api, workers, Postgres and Redis
 * — the bench's own (the receiver's) is left out.
 */
export type TracingOverhead = {
  runs: number;
  cpuMsPerRunOff: number;
  cpuMsPerRunOn: number;
  overheadPercent: number;
  spansReceived: number;
  spansPerRun: number;
};

export async function tracingOverhead(env: Record<string, string>, key: string, db: Db, runs: number, warmup: number): Promise<TracingOverhead> {
  const receiver = await startCountingReceiver();
  try {
    const off = await measure(env, key, db, runs, warmup, 'off');
    const spansBefore = receiver.spans;
    const on = await measure({ ...env, OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, OTEL_BSP_SCHEDULE_DELAY: '500' }, key, db, runs, warmup, 'on');
    const spans = receiver.spans - spansBefore;
    return {
      runs,
      cpuMsPerRunOff: round(off, 3),
      cpuMsPerRunOn: round(on, 3),
      overheadPercent: round(((on - off) / off) * 100, 1),
      spansReceived: spans,
      spansPerRun: round(spans / (runs + warmup), 2),
    };
  } finally {
    await receiver.close();
  }
}

async function measure(env: Record<string, string>, key: string, db: Db, runs: number, warmup: number, label: string): Promise<number> {
  const processes: Spawned[] = [];
  try {
    const port = await freePort();
    const apiEnv = { ...env, PORT: String(port) };
    const api = spawnTs('api/main.ts', [], apiEnv, `http://127.0.0.1:${port}/healthz`);
    processes.push(api);
    await api.ready;
    const workers = await startWorkers(apiEnv, processes);
    const client = apiClient(`http://127.0.0.1:${port}`, key);
    log(`tracing ${label}: ${warmup} runs to warm up, then ${runs} measured`);
    let afterSeq = await lastRunSeq(db);
    await postAsFastAsTheyGo(client, warmup);
    await waitForCompletedRuns(db, afterSeq, warmup, `the tracing-${label} warm-up`, 200);
    const own = [{ pid: api.child.pid!, kind: 'api' }, ...workers.map((w) => ({ pid: w.child.pid!, kind: 'workers' }))];
    afterSeq = await lastRunSeq(db);
    const before = await cpuSnapshot(own);
    await postAsFastAsTheyGo(client, runs);
    await waitForCompletedRuns(db, afterSeq, runs, `the tracing-${label} runs`, 200);
    const cpu = cpuMsPerItem(before, await cpuSnapshot(own), runs);
    client.close();
    return (cpu.api ?? 0) + (cpu.workers ?? 0) + (cpu.postgres ?? 0) + (cpu.redis ?? 0);
  } finally {
    // Stopped gracefully: a traced process flushes its last spans.
    await Promise.all(processes.map((p) => p.stop()));
  }
}

/** An OTLP/HTTP endpoint that counts the spans it is sent (JSON, as the exporter sends them). */
async function startCountingReceiver() {
  const state = { spans: 0, endpoint: '', close: async () => {} };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { resourceSpans?: { scopeSpans?: { spans?: unknown[] }[] }[] };
        for (const resource of body.resourceSpans ?? []) for (const scope of resource.scopeSpans ?? []) state.spans += scope.spans?.length ?? 0;
      } catch {
        // not a trace export
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return state;
}
