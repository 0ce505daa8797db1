import { Redis } from 'ioredis';
import { EventSourceParserStream } from 'eventsource-parser/stream';
import type { Db } from '../../shared/infra/db.js';
import { rssMiB } from './stats.js';
import { IDLE_STREAMS } from './options.js';
import { waitUntil, lastRunSeq } from './support.js';
import type { Api } from './apiClient.js';

/** The streaming phases: emit-to-receive delay of text deltas, and what idle SSE clients cost the api. */

/** Reads one run's stream; returns provider-emit → client-receive delays of deltas emitted after it connected. */
export async function streamOverhead(api: Api, runId: string): Promise<number[]> {
  const res = await fetch(`${api.base}/api/chat/runs/${runId}/stream`, { headers: { authorization: `Bearer ${api.key}` } });
  const connectedAt = Date.now();
  const delays: number[] = [];
  const stream = res.body!.pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream());
  for await (const event of stream as unknown as AsyncIterable<{ data: string }>) {
    if (event.data === '[DONE]') break;
    const chunk = JSON.parse(event.data) as { type: string; providerMetadata?: { runyard?: { emittedAt?: number } } };
    const emittedAt = chunk.providerMetadata?.runyard?.emittedAt;
    if (chunk.type === 'text-delta' && emittedAt && emittedAt >= connectedAt) delays.push(Date.now() - emittedAt);
  }
  return delays;
}

/** N idle SSE clients (runs that no worker has picked up yet): what they cost the api. */
export async function idleStreamCost(api: Api, apiPid: number, redis: Redis, db: Db) {
  const runIds = [];
  const afterSeq = await lastRunSeq(db);
  for (let i = 0; i < IDLE_STREAMS; i++) runIds.push((await api.post()).runId);
  const rssBefore = await rssMiB(apiPid);
  const controller = new AbortController();
  const open = runIds.map((runId) =>
    fetch(`${api.base}/api/chat/runs/${runId}/stream`, { headers: { authorization: `Bearer ${api.key}` }, signal: controller.signal })
      .then(async (res) => {
        for await (const _ of res.body!) void _;
      })
      .catch(() => {}),
  );
  await waitUntil(async () => {
    const metrics = await (await fetch(`${api.base}/metrics`)).text();
    return Number(/runyard_active_streams\{process="api"\} (\d+)/.exec(metrics)?.[1] ?? 0) >= IDLE_STREAMS;
  }, 'idle streams to connect');
  const clients = (await redis.client('LIST')) as string;
  const apiConnections = clients.split('\n').filter((line) => /name=runyard-api/.test(line)).length;
  const rssWith = await rssMiB(apiPid);
  controller.abort();
  await Promise.all(open);
  return { streams: IDLE_STREAMS, apiRedisConnections: apiConnections, apiRssBeforeMiB: rssBefore, apiRssWithStreamsMiB: rssWith, afterSeq };
}
