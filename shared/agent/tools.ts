import { isWorkspaceToolName, toolNameReserved } from '../workspaces/workspaceRequest.js';
import { AppError } from '../infra/errors.js';
import { SCHEMA_BOUNDS } from './toolSchemas/bounds.js';
import type { SchemaChecker } from './toolSchemas/schemaChecker.js';

/**
 * A tool a run offers its model (SPEC section 9). With `url` it is a server tool that a worker
 * calls; without, a client tool the caller runs. The api checks every definition at POST (the
 * schema compiles, the url is allowed); the worker checks each call's input against the schema.
 */
export type ToolDefinition = { name: string; description?: string; inputSchema: Record<string, unknown>; url?: string; requireApproval?: boolean };

export const TOOL_NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** An MCP server whose tools a run offers its model as `<name>__<tool>` (SPEC section 9). */
/**
 * How an MCP server is authenticated (SPEC section 21): an account secret as a bearer token (or in
 * `header`), or OAuth2 client credentials whose `clientSecret` names an account secret.
 */
export type McpAuth = { secret: string; header?: string } | { oauth2: { tokenUrl: string; clientId: string; clientSecret: string; scope?: string } };
export type McpServerDefinition = { name: string; url: string; auth?: McpAuth };

/** The account secrets the servers' credentials name. */
export const secretNamesOf = (servers: readonly McpServerDefinition[]): string[] => [
  ...new Set(servers.flatMap((server) => (!server.auth ? [] : 'oauth2' in server.auth ? [server.auth.oauth2.clientSecret] : [server.auth.secret]))),
];

/** Checks a run's MCP servers as POST does: each url on the allowlist. */
export function checkMcpServers(servers: readonly McpServerDefinition[], allowlist: readonly string[]): void {
  for (const server of servers) {
    if (!isToolUrlAllowed(server.url, allowlist)) {
      throw urlNotAllowed('tool_url_not_allowed', `MCP server "${server.name}": ${server.url} is not on this server's tool allowlist.`);
    }
    if (server.auth && 'oauth2' in server.auth && !isToolUrlAllowed(server.auth.oauth2.tokenUrl, allowlist)) {
      throw urlNotAllowed(
        'tool_url_not_allowed',
        `MCP server "${server.name}": its tokenUrl ${server.auth.oauth2.tokenUrl} is not on this server's tool allowlist.`,
      );
    }
  }
}

/** A url off TOOL_URL_ALLOWLIST, refused at POST (tools, MCP servers, webhooks share the allowlist). */
export const urlNotAllowed = (code: 'tool_url_not_allowed' | 'webhook_url_not_allowed', detail: string) =>
  new AppError(code, 400, detail, 'Use a url under one of the origins or prefixes in TOOL_URL_ALLOWLIST (ask the operator to add yours).');

/**
 * Whether `url` is on the operator's allowlist: an entry is an origin (`https://tools.example.com`,
 * any path on it) or a url prefix (`https://api.example.com/tools/`, that path and below).
 */
export function isToolUrlAllowed(url: string, allowlist: readonly string[]): boolean {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return false;
  if (parsed.username || parsed.password) return false;
  const normalized = parsed.href;
  return allowlist.some((entry) => {
    let allowed: URL;
    try {
      allowed = new URL(entry);
    } catch {
      return false;
    }
    if (allowed.origin !== parsed.origin) return false;
    const prefix = allowed.pathname;
    if (prefix === '/') return true;
    return (
      normalized.startsWith(allowed.origin + prefix) &&
      (prefix.endsWith('/') || [undefined, '/', '?', '#'].includes(normalized[(allowed.origin + prefix).length]))
    );
  });
}

/**
 * Checks a run's tool definitions as POST does: each schema is an object schema within the schema
 * bounds that compiles (on the schema thread, within TOOL_SCHEMA_TIMEOUT_MS); each url is allowed.
 */
export async function checkToolDefinitions(tools: readonly ToolDefinition[], allowlist: readonly string[], schemas: SchemaChecker): Promise<void> {
  for (const tool of tools) {
    if (isWorkspaceToolName(tool.name)) throw toolNameReserved(tool.name);
    if (tool.inputSchema.type !== undefined && tool.inputSchema.type !== 'object') {
      throw invalidToolSchema(tool.name, 'the input schema must describe an object ("type": "object")');
    }
    if (tool.url !== undefined && !isToolUrlAllowed(tool.url, allowlist)) {
      throw urlNotAllowed('tool_url_not_allowed', `Tool "${tool.name}": ${tool.url} is not on this server's tool allowlist.`);
    }
    if (tool.requireApproval && tool.url === undefined) {
      throw new AppError(
        'validation_failed',
        400,
        `Tool "${tool.name}": requireApproval applies to server tools (with a url); a client tool is already run by you.`,
        'Remove requireApproval, or give the tool a url.',
      );
    }
  }
  const refusal = await schemas.compile(tools.map((tool) => tool.inputSchema));
  if (!refusal) return;
  if (refusal.index !== null) throw invalidToolSchema(tools[refusal.index]!.name, refusal.reason);
  throw schemaRefused(`The tools' input schemas (${tools.map((tool) => `"${tool.name}"`).join(', ')}) were refused together: ${refusal.reason}.`);
}

const invalidToolSchema = (name: string, why: string) => schemaRefused(`Tool "${name}" has an invalid inputSchema: ${why}.`);

const schemaRefused = (detail: string) =>
  new AppError(
    'invalid_tool_schema',
    400,
    detail,
    `Send a valid JSON Schema (draft-07) object as inputSchema: at most ${SCHEMA_BOUNDS.maxBytes} bytes as JSON, ${SCHEMA_BOUNDS.maxDepth} levels deep, ` +
      `${SCHEMA_BOUNDS.maxNodes} objects and arrays, ${SCHEMA_BOUNDS.maxArrayItems} items in any array; patterns in RE2 syntax (no backreferences or lookaround).`,
  );
