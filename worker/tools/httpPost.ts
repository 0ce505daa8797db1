import http from 'node:http';
import https from 'node:https';

/** Kept-alive connections per protocol: tools and webhook receivers are called again and again, often on one host. */
const agents = { 'http:': new http.Agent({ keepAlive: true, maxSockets: 256 }), 'https:': new https.Agent({ keepAlive: true, maxSockets: 256 }) };

export class PostTimeout extends Error {}

/**
 * One POST on node:http, for server tools and webhooks (fetch costs several times the CPU per
 * request, and this is every step of every agent run). Redirects are never followed; a body over
 * `maxBytes` is cut off and reported as null; no answer within `timeoutMs` rejects with PostTimeout.
 */
export function postJson(url: URL, headers: Record<string, string>, body: string, signal: AbortSignal, timeoutMs: number, maxBytes: number) {
  return new Promise<{ status: number; text: string | null }>((resolve, reject) => {
    const client = url.protocol === 'https:' ? https : http;
    const req = client.request(
      url,
      { method: 'POST', agent: agents[url.protocol as 'http:' | 'https:'], headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) }, signal },
      (res) => {
        const status = res.statusCode ?? 0;
        const declared = Number(res.headers['content-length']);
        if ((status >= 300 && status < 400) || declared > maxBytes) {
          res.destroy();
          return resolve({ status, text: declared > maxBytes ? null : '' });
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxBytes) {
            res.destroy();
            resolve({ status, text: null });
          } else chunks.push(chunk);
        });
        res.on('end', () => resolve({ status, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    const timer = setTimeout(() => req.destroy(new PostTimeout()), timeoutMs);
    req.on('close', () => clearTimeout(timer));
    req.on('error', reject);
    req.end(body);
  });
}
