import http from 'node:http';
import { PROMPT } from './options.js';

/** The bench's load generator: POSTs on kept-alive node:http sockets, as fast as they go. */

export type Api = { base: string; key: string; post: () => Promise<{ ms: number; runId: string }>; close: () => void };

/**
 * POSTs with node:http on kept-alive sockets rather than fetch: the load generator shares the
 * machine with what it measures, and fetch costs it several times more CPU per request.
 */
export function apiClient(base: string, key: string, body = JSON.stringify({ prompt: PROMPT })): Api {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 128 });
  const url = new URL('/api/chat/runs', base);
  const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
  const post = () =>
    new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = http.request(url, { method: 'POST', agent, headers }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  return {
    base,
    key,
    close: () => agent.destroy(),
    post: async () => {
      const started = performance.now();
      const { status, text } = await post();
      const ms = performance.now() - started;
      if (status !== 202) throw new Error(`POST answered ${status}: ${text}`);
      return { ms, runId: (JSON.parse(text) as { runId: string }).runId };
    },
  };
}

/** POSTs `n` runs from 64 concurrent clients; the run ids. */
export async function postAsFastAsTheyGo(api: Api, n: number): Promise<string[]> {
  const runIds: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < n) {
        next++;
        runIds.push((await api.post()).runId);
      }
    }),
  );
  return runIds;
}
