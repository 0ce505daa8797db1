import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { cpuMsPerItem, cpuSnapshot } from './cpu.js';
import { PROMPT } from './options.js';

/** What a caller guessing keys costs the api: POSTs with unknown keys, mostly answered 429 before any lookup. */

/**
 * What a rejected caller costs the api: POSTs with a different well-formed but unknown key each
 * time, from 64 concurrent clients. After AUTH_FAILURES_PER_MINUTE failures the address gets 429
 * before any key lookup, so this is the steady state of someone guessing keys. CPU ms per request, by kind.
 */
export async function rejectedRequestCpu(
  base: string,
  apiPid: number,
  n: number,
): Promise<{ statuses: Record<string, number>; cpuMsPerRequest: Record<string, number> }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const body = JSON.stringify({ prompt: PROMPT });
  const statuses: Record<string, number> = {};
  const once = () =>
    new Promise<void>((resolve, reject) => {
      const key = `ry_sk_${randomBytes(32).toString('base64url')}`;
      const req = http.request(new URL('/api/chat/runs', base), {
        method: 'POST',
        agent,
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      });
      req.on('response', (res) => {
        statuses[String(res.statusCode)] = (statuses[String(res.statusCode)] ?? 0) + 1;
        res.resume().on('end', resolve);
      });
      req.on('error', reject);
      req.end(body);
    });
  const own = [
    { pid: process.pid, kind: 'bench' },
    { pid: apiPid, kind: 'api' },
  ];
  const before = await cpuSnapshot(own);
  let next = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < n) {
        next++;
        await once();
      }
    }),
  );
  const cpu = cpuMsPerItem(before, await cpuSnapshot(own), n);
  agent.destroy();
  return { statuses, cpuMsPerRequest: cpu };
}
