import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { traceHeaders } from '../../shared/infra/tracing.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { RunError } from '../../shared/infra/errors.js';
import type { McpServerDefinition } from '../../shared/agent/tools.js';
import type { ToolOutcome } from '../../shared/agent/steps.js';
import { RUNYARD_API_URL_HEADER } from './callServerTool.js';
import { oauth2Tokens } from './oauth2Tokens.js';

/** A tool an MCP server offers, as the run offers it to the model: `<server>__<tool>`. */
export type McpTool = { name: string; description?: string; inputSchema: Record<string, unknown>; server: string; toolName: string };

export const MCP_SEPARATOR = '__';

/** An MCP server's answer runyard does not use: a redirect, or an HTTP error whose body is the server's to keep. */
class McpHttpRefusal extends Error {}

/**
 * The transport's fetch: a redirect is never followed (the run's key would go wherever it points, off
 * the allowlist's prefix; the SDK would follow one within the origin) and a failed answer's body is
 * dropped before the SDK reads it, so no remote text ends up in a run's error.
 */
const guardedFetch = async (url: string | URL, init?: RequestInit): Promise<Response> => {
  // Each request carries the active trace (the tool call's span, or the attempt's while connecting).
  const headers = new Headers(init?.headers);
  for (const [name, value] of Object.entries(traceHeaders())) headers.set(name, value);
  const response = await fetch(url, { ...init, headers, redirect: 'manual' });
  if (response.status >= 300 && response.status < 400) {
    await response.body?.cancel();
    throw new McpHttpRefusal(`the MCP server answered ${response.status}, a redirect (redirects are not followed)`);
  }
  if (response.ok) return response;
  await response.body?.cancel();
  return new Response(null, { status: response.status, headers: response.headers });
};

/** What went wrong with an MCP server, in runyard's words (never the server's own text). */
function mcpFailure(err: unknown): string {
  if (err instanceof McpHttpRefusal) return err.message;
  if (err instanceof McpError) return `the MCP server answered JSON-RPC error ${err.code}`;
  if (err instanceof StreamableHTTPError && (err.code ?? 0) > 0) return `the MCP server answered HTTP ${err.code}`;
  const message = err instanceof Error ? err.message : String(err);
  const cause = (err as { cause?: { code?: string } })?.cause?.code;
  if (cause) return `the MCP server could not be reached (${cause})`;
  if (/timed? ?out/i.test(message)) return 'the MCP server did not answer in time';
  return 'the MCP server could not be reached or did not speak MCP';
}

type Fetch = (url: string | URL, init?: RequestInit) => Promise<Response>;

/**
 * What an MCP server gets to authenticate the run (SPEC section 21): the run's key as the bearer
 * token; or, when the server names credentials (`auth`), an account secret — as the bearer token or
 * in the header it names — or an OAuth2 client-credentials token (fetched, cached, renewed once on
 * a 401), and then the run's key as x-runyard-run-key. A secret the account no longer has fails the
 * listing (mcp_unavailable), never a call without it.
 */
function credentialsFor(
  server: McpServerDefinition,
  run: { apiKey: string; secrets?: Map<string, string> },
  signal: AbortSignal,
): { headers: Record<string, string>; fetch: Fetch } {
  if (!server.auth) return { headers: { authorization: `Bearer ${run.apiKey}` }, fetch: guardedFetch };
  const secretName = 'oauth2' in server.auth ? server.auth.oauth2.clientSecret : server.auth.secret;
  const value = run.secrets?.get(secretName);
  if (value === undefined) throw new RunError('mcp_unavailable', `the account has no secret "${secretName}" for MCP server ${server.name}`, false);
  if (!('oauth2' in server.auth)) {
    const header = server.auth.header?.toLowerCase() ?? 'authorization';
    return { headers: { [header]: header === 'authorization' ? `Bearer ${value}` : value, 'x-runyard-run-key': run.apiKey }, fetch: guardedFetch };
  }
  const client = { ...server.auth.oauth2, clientSecret: value };
  const withToken = async (url: string | URL, init: RequestInit | undefined, token: string) => {
    const headers = new Headers(init?.headers);
    headers.set('authorization', `Bearer ${token}`);
    return guardedFetch(url, { ...init, headers });
  };
  return {
    headers: { 'x-runyard-run-key': run.apiKey },
    fetch: async (url, init) => {
      const token = await oauth2Tokens.token(client, signal);
      const response = await withToken(url, init, token);
      if (response.status !== 401) return response;
      // Revoked or expired early: one new token, one more try.
      oauth2Tokens.invalidate(client, token);
      return withToken(url, init, await oauth2Tokens.token(client, signal));
    },
  };
}

/**
 * A run attempt's connections to its MCP servers (SPEC section 9): listed at the start of the
 * attempt over the streamable HTTP transport with the run's key as the bearer token, called with
 * `tools/call`, closed when the attempt ends. A server that cannot be listed fails the attempt
 * with `mcp_unavailable` (retryable).
 */
export class McpConnections {
  private readonly clients = new Map<string, Client>();

  private constructor(readonly tools: McpTool[]) {}

  static async open(
    servers: readonly McpServerDefinition[],
    run: { apiKey: string; apiUrl: string; secrets?: Map<string, string> },
    timeoutMs: number,
    signal: AbortSignal,
  ): Promise<McpConnections> {
    const connections = new McpConnections([]);
    try {
      for (const server of servers) {
        const client = new Client({ name: 'runyard-worker', version: '1.0.0' });
        const credentials = credentialsFor(server, run, signal);
        const transport = new StreamableHTTPClientTransport(new URL(server.url), {
          fetch: credentials.fetch,
          requestInit: { headers: { ...credentials.headers, [RUNYARD_API_URL_HEADER]: run.apiUrl } },
        });
        await client.connect(transport, { signal, timeout: timeoutMs });
        connections.clients.set(server.name, client);
        for (let cursor: string | undefined, first = true; first || cursor; first = false) {
          const page = await client.listTools(cursor ? { cursor } : undefined, { signal, timeout: timeoutMs });
          for (const tool of page.tools) {
            connections.tools.push({
              name: `${server.name}${MCP_SEPARATOR}${tool.name}`,
              description: tool.description,
              inputSchema: tool.inputSchema as Record<string, unknown>,
              server: server.name,
              toolName: tool.name,
            });
          }
          cursor = page.nextCursor;
        }
      }
      return connections;
    } catch (err) {
      await connections.close();
      signal.throwIfAborted();
      if (err instanceof RunError) throw err;
      throw new RunError('mcp_unavailable', `an MCP server could not be listed: ${mcpFailure(err)}`, true);
    }
  }

  /** Calls one tool; the server's result (or its error, or a failed call) becomes the model's result. */
  async call(tool: McpTool, input: unknown, ids: { runId: string; idempotencyKey: string }, timeoutMs: number, signal: AbortSignal): Promise<ToolOutcome> {
    const client = this.clients.get(tool.server);
    if (!client) return { error: `MCP server ${tool.server} is not connected` };
    try {
      const result = await client.callTool(
        {
          name: tool.toolName,
          arguments: (input ?? {}) as Record<string, unknown>,
          _meta: { 'runyard/run-id': ids.runId, 'runyard/idempotency-key': ids.idempotencyKey },
        },
        undefined,
        { signal, timeout: timeoutMs },
      );
      const content = (result.content ?? []) as { type: string; text?: string }[];
      const text = content.map((part) => (part.type === 'text' ? (part.text ?? '') : '')).join('');
      if (result.isError) return { error: text || 'the MCP tool reported an error' };
      return { output: result.structuredContent ?? (content.every((part) => part.type === 'text') ? text : content) };
    } catch (err) {
      signal.throwIfAborted();
      // A JSON-RPC error of tools/call is the tool's answer to the model, as a server tool's error is.
      return { error: err instanceof McpError ? err.message : `the MCP call failed: ${mcpFailure(err)}` };
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.clients.values()].map((client) => client.close().catch(() => {})));
    this.clients.clear();
  }
}
