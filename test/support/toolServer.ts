import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A real HTTP tool server for the tests: it records every call (headers and raw body) and answers
 * per tool with a behaviour the test sets, by default `{ output: { tool, input } }`.
 */
export type ToolCallRecord = {
  tool: string;
  headers: IncomingHttpHeaders;
  rawBody: string;
  body: { runId: string; chatId: string; toolCallId: string; toolName: string; input: unknown };
};

export type ToolAnswer = { status?: number; body?: unknown; rawBody?: string; delayMs?: number; headers?: Record<string, string> };
export type ToolBehaviour = (call: ToolCallRecord, nth: number) => ToolAnswer | Promise<ToolAnswer>;

export type ToolServer = {
  url: string;
  origin: string;
  toolUrl: (name: string) => string;
  calls: ToolCallRecord[];
  callsOf: (name: string) => ToolCallRecord[];
  behave: (name: string, behaviour: ToolBehaviour) => void;
  close: () => Promise<void>;
};

export async function startToolServer(): Promise<ToolServer> {
  const calls: ToolCallRecord[] = [];
  const behaviours = new Map<string, ToolBehaviour>();
  const open = new Set<ServerResponse>();
  const server: Server = createServer(async (req, res) => {
    open.add(res);
    res.on('close', () => open.delete(res));
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const rawBody = Buffer.concat(chunks).toString('utf8');
    const tool = decodeURIComponent(req.url?.replace(/^\/tools\//, '').split('?')[0] ?? '');
    let body: ToolCallRecord['body'];
    try {
      body = JSON.parse(rawBody);
    } catch {
      return void res.writeHead(400).end('not json');
    }
    const record: ToolCallRecord = { tool, headers: req.headers, rawBody, body };
    calls.push(record);
    const nth = calls.filter((c) => c.tool === tool).length;
    const behaviour: ToolBehaviour = behaviours.get(tool) ?? (() => ({ body: { output: { tool, input: body.input } } }));
    const answer = await behaviour(record, nth);
    if (answer.delayMs) await new Promise((resolve) => setTimeout(resolve, answer.delayMs));
    if (res.destroyed) return;
    const payload = answer.rawBody ?? JSON.stringify(answer.body ?? { output: null });
    res.writeHead(answer.status ?? 200, { 'content-type': 'application/json', ...answer.headers }).end(payload);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: `${origin}/tools/`,
    origin,
    toolUrl: (name) => `${origin}/tools/${name}`,
    calls,
    callsOf: (name) => calls.filter((c) => c.tool === name),
    behave: (name, behaviour) => behaviours.set(name, behaviour),
    close: async () => {
      for (const res of open) res.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
