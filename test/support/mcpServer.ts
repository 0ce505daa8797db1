import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';

/**
 * A real MCP server over the streamable HTTP transport (stateless: a server per request, as the
 * SDK's examples do), for the tests. Tools: `add` { a, b } → structured { sum }; `explode` → an
 * error result. It records every request's headers and every tool call. Hostile paths for the
 * hardening tests: `/public/redirect` answers 307 to `/private/secret` (same origin, another path),
 * `/public/broken` a 500 whose body holds a secret; `privateHits` counts requests to `/private/`.
 */
export type TestMcpServer = {
  url: string;
  origin: string;
  requests: IncomingHttpHeaders[];
  privateHits: IncomingHttpHeaders[];
  toolCalls: { name: string; args: unknown }[];
  /**
   * A fake OAuth2 token endpoint at `<origin>/oauth/token` (client credentials, HTTP Basic; client
   * `runyard-client`, secret `oauth-client-secret`), and `<origin>/oauth-mcp`: the MCP server that
   * takes only the tokens it issued and has not revoked.
   */
  oauth: { tokenRequests: { authorization: string; body: string }[]; issued: string[]; revoke: () => void };
  close: () => Promise<void>;
};

export const OAUTH_CLIENT = { clientId: 'runyard-client', clientSecret: 'oauth-client-secret' };

export const MCP_SECRET_BODY = 'TOP-SECRET-do-not-echo';

export async function startMcpServer(callbackBase: () => string = () => ''): Promise<TestMcpServer> {
  const requests: IncomingHttpHeaders[] = [];
  const privateHits: IncomingHttpHeaders[] = [];
  const toolCalls: { name: string; args: unknown }[] = [];
  const mcpServer = () => {
    const server = new McpServer({ name: 'runyard-test-mcp', version: '1.0.0' });
    server.registerTool(
      'add',
      { description: 'adds two numbers', inputSchema: { a: z.number(), b: z.number() }, outputSchema: { sum: z.number() } },
      async ({ a, b }) => {
        toolCalls.push({ name: 'add', args: { a, b } });
        return { content: [{ type: 'text', text: String(a + b) }], structuredContent: { sum: a + b } };
      },
    );
    // Calls runyard back with the bearer token the worker sent (the run's key): what the run can see.
    server.registerTool('run_status', { description: 'reads its run back from runyard', inputSchema: {} }, async (_input, extra) => {
      const authorization = String(extra.requestInfo?.headers.authorization ?? '');
      const runId = String(extra._meta?.['runyard/run-id'] ?? '');
      const res = await fetch(`${callbackBase()}/api/chat/runs/${runId}`, { headers: { authorization } });
      const body = (await res.json()) as { status?: string };
      toolCalls.push({ name: 'run_status', args: { runId, httpStatus: res.status, status: body.status } });
      return { content: [{ type: 'text', text: JSON.stringify({ httpStatus: res.status, status: body.status }) }] };
    });
    server.registerTool('explode', { description: 'always fails', inputSchema: {} }, async () => {
      toolCalls.push({ name: 'explode', args: {} });
      return { content: [{ type: 'text', text: 'kaboom' }], isError: true };
    });
    return server;
  };
  const tokenRequests: { authorization: string; body: string }[] = [];
  const issued: string[] = [];
  const valid = new Set<string>();
  const http: Server = createServer(async (req, res) => {
    if (req.url === '/oauth/token' && req.method === 'POST') {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const body = Buffer.concat(chunks).toString('utf8');
      const authorization = String(req.headers.authorization ?? '');
      tokenRequests.push({ authorization, body });
      const expected = `Basic ${Buffer.from(`${OAUTH_CLIENT.clientId}:${OAUTH_CLIENT.clientSecret}`).toString('base64')}`;
      if (authorization !== expected) return void res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"invalid_client"}');
      if (new URLSearchParams(body).get('grant_type') !== 'client_credentials')
        return void res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"unsupported_grant_type"}');
      const token = `oauth-token-${issued.length + 1}`;
      issued.push(token);
      valid.add(token);
      return void res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ access_token: token, token_type: 'Bearer', expires_in: 3600 }));
    }
    if (req.url === '/oauth-mcp' && !valid.has(String(req.headers.authorization ?? '').replace(/^Bearer /, ''))) {
      requests.push(req.headers);
      return void res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' }).end();
    }
    if (req.url?.startsWith('/private/')) {
      privateHits.push(req.headers);
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ secret: MCP_SECRET_BODY }));
    }
    if (req.url === '/public/redirect') return void res.writeHead(307, { location: '/private/secret' }).end();
    if (req.url === '/public/broken') return void res.writeHead(500, { 'content-type': 'text/plain' }).end(`stack trace with ${MCP_SECRET_BODY}`);
    requests.push(req.headers);
    if (req.method !== 'POST') return void res.writeHead(405).end();
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    const server = mcpServer();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, body);
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  return {
    url: `${origin}/mcp`,
    origin,
    requests,
    privateHits,
    toolCalls,
    oauth: { tokenRequests, issued, revoke: () => valid.clear() },
    close: () =>
      new Promise<void>((resolve) => {
        http.closeAllConnections();
        http.close(() => resolve());
      }),
  };
}
