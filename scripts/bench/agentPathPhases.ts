import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { EventSourceParserStream } from 'eventsource-parser/stream';
import type { Db } from '../../shared/infra/db.js';
import type { Api } from './apiClient.js';
import { log } from './options.js';
import { spawnTs, type Spawned } from './processes.js';
import { round, rssMiB, summary } from './stats.js';
import { freePort, onAClock, waitUntil } from './support.js';

/**
 * SPEC section 22's first-token and memory figures.
 *
 * First token: POST → the first `text-delta` at an SSE client, at a fixed rate, minus the provider's
 * own time to first token — local/echo with LOCAL_MODEL_DELAY_MS=0 sends its first word at once
 * (a fixed 0 ms), so the whole figure is runyard's.
 */
export async function firstTokenOverhead(api: Api, runs: number, perSecond: number) {
  const overheads: number[] = [];
  await onAClock(runs, perSecond, async () => {
    const posted = performance.now();
    const { runId } = await api.post();
    const res = await fetch(`${api.base}/api/chat/runs/${runId}/stream`, { headers: { authorization: `Bearer ${api.key}` } });
    const stream = res.body!.pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream());
    for await (const event of stream as unknown as AsyncIterable<{ data: string }>) {
      if (event.data === '[DONE]') break;
      if ((JSON.parse(event.data) as { type: string }).type === 'text-delta') {
        overheads.push(performance.now() - posted);
        break;
      }
    }
    await res.body?.cancel().catch(() => {});
  });
  return { runs, ratePerSecond: perSecond, providerTimeToFirstTokenMs: 0, ...summary(overheads) };
}

/**
 * Memory per in-flight run: one fresh worker (WORKER_CONCURRENCY = `inFlight`) takes `inFlight`
 * agent runs that each wait in a server tool's call (a tool server in the bench process holds the
 * requests; past the worker's 256 sockets per host, a call waits for a socket — in flight all the
 * same); its RSS with them all running, less its RSS after a warm-up, per run.
 */
export async function memoryPerInFlightRun(env: Record<string, string>, key: string, db: Db, inFlight: number) {
  const held: http.ServerResponse[] = [];
  let holding = true;
  const tools = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (holding) held.push(res);
      else res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
  });
  await new Promise<void>((resolve) => tools.listen(0, '127.0.0.1', resolve));
  const toolUrl = `http://127.0.0.1:${(tools.address() as AddressInfo).port}`;
  const processes: Spawned[] = [];
  try {
    const port = await freePort();
    const metricsPort = await freePort();
    const runEnv = { ...env, PORT: String(port), TOOL_URL_ALLOWLIST: toolUrl, TOOL_TIMEOUT_MS: '300000', WORKER_CONCURRENCY: String(inFlight) };
    const api = spawnTs('api/main.ts', [], runEnv, `http://127.0.0.1:${port}/healthz`);
    processes.push(api);
    await api.ready;
    const worker = spawnTs(
      'worker/main.ts',
      [],
      { ...runEnv, WORKER_ID: 'bench-memory', WORKER_METRICS_PORT: String(metricsPort) },
      `http://127.0.0.1:${metricsPort}/healthz`,
    );
    processes.push(worker);
    await worker.ready;
    const body = JSON.stringify({
      prompt: 'call wait {}',
      tools: [{ name: 'wait', url: `${toolUrl}/wait`, inputSchema: { type: 'object' } }],
    });
    const post = async () => {
      const res = await fetch(`http://127.0.0.1:${port}/api/chat/runs`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body,
      });
      if (res.status !== 202) throw new Error(`POST answered ${res.status}: ${await res.text()}`);
    };
    const releaseAll = () => {
      for (const res of held.splice(0)) res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    };
    const batch = async (n: number) => {
      for (let i = 0; i < n; i += 50) await Promise.all(Array.from({ length: Math.min(50, n - i) }, post));
    };
    log(`memory: a warm-up of ${Math.min(inFlight, 500)} held runs, then ${inFlight} in flight at once`);
    const warm = Math.min(inFlight, 500);
    const running = () => db.run.count({ where: { status: 'running' } });
    await batch(warm);
    await waitUntil(async () => (await running()) >= warm && held.length > 0, 'the warm-up runs to reach their tool');
    holding = false;
    releaseAll();
    await waitUntil(async () => (await db.run.count({ where: { status: { in: ['queued', 'running'] } } })) === 0, 'the warm-up runs to end');
    await sleep(2_000);
    const idleMiB = await rssMiB(worker.child.pid!);
    holding = true;
    await batch(inFlight);
    await waitUntil(async () => (await running()) >= inFlight && held.length >= Math.min(inFlight, 256), `${inFlight} runs to be in flight`, 600_000, 200);
    await sleep(1_000);
    const busyMiB = await rssMiB(worker.child.pid!);
    holding = false;
    releaseAll();
    await waitUntil(async () => (await db.run.count({ where: { status: { in: ['queued', 'running'] } } })) === 0, 'the held runs to end');
    return { inFlight, workerRssIdleMiB: idleMiB, workerRssInFlightMiB: busyMiB, kibPerInFlightRun: round(((busyMiB - idleMiB) * 1024) / inFlight, 1) };
  } finally {
    holding = false;
    for (const res of held.splice(0)) res.destroy();
    await Promise.all(processes.map((p) => p.stop()));
    await new Promise<void>((resolve) => tools.close(() => resolve()));
  }
}
