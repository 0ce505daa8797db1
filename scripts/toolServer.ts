/**
 * A tiny server-tool host for trying agent runs: `npm run tool-server` (port TOOL_SERVER_PORT,
 * default 4000). Tools:
 *   POST /tools/add         { a, b }  → { output: { sum } }
 *   POST /tools/run_status  {}        → calls runyard back with the run's key (the request's Bearer
 *                                      token) at the url runyard sends as x-runyard-api-url (its
 *                                      PUBLIC_BASE_URL) and answers with what GET /api/chat/runs/{runId} said
 * With TOOL_SECRET set (the account's `whsec_…`, from `npm run cli -- accounts tool-secret --account A`),
 * every call's Standard Webhooks signature is verified and unsigned calls are refused.
 */
import { createServer } from 'node:http';
import { Webhook } from 'standardwebhooks';

// eslint-disable-next-line no-restricted-properties -- a standalone example tool host, not one of runyard's processes
const env = process.env;
const port = Number(env.TOOL_SERVER_PORT ?? 4000);
const verifier = env.TOOL_SECRET ? new Webhook(env.TOOL_SECRET) : null;

type Call = { runId: string; chatId: string; toolCallId: string; toolName: string; input: Record<string, unknown> };

type Caller = { key: string; runyardUrl: string };

const tools: Record<string, (call: Call, caller: Caller) => Promise<unknown>> = {
  add: async ({ input }) => ({ sum: Number(input.a) + Number(input.b) }),
  run_status: async ({ runId }, { key, runyardUrl }) => {
    const res = await fetch(`${runyardUrl}/api/chat/runs/${runId}`, { headers: { authorization: key } });
    const run = (await res.json()) as { status?: string; steps?: number };
    return { httpStatus: res.status, status: run.status, steps: run.steps };
  },
};

const server = createServer(async (req, res) => {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const raw = Buffer.concat(chunks).toString('utf8');
  const answer = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  const tool = tools[req.url?.replace(/^\/tools\//, '') ?? ''];
  if (req.method !== 'POST' || !tool) return answer(404, { error: 'no such tool' });
  try {
    const call = (verifier ? verifier.verify(raw, req.headers as Record<string, string>) : JSON.parse(raw)) as Call;
    console.log(`${call.toolName} ${call.toolCallId} (webhook-id ${req.headers['webhook-id']}) input ${JSON.stringify(call.input)}`);
    const runyardUrl = String(req.headers['x-runyard-api-url'] ?? 'http://127.0.0.1:3000').replace(/\/$/, '');
    answer(200, { output: await tool(call, { key: String(req.headers.authorization), runyardUrl }) });
  } catch (err) {
    answer(verifier ? 401 : 400, { error: (err as Error).message });
  }
});
server.listen(port, '127.0.0.1', () =>
  console.log(`tool server on http://127.0.0.1:${port}/tools/ (signatures ${verifier ? 'verified' : 'not checked: set TOOL_SECRET'})`),
);
