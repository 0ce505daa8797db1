import { lstat, mkdir, readFile, writeFile } from 'node:fs/promises';
import { listEntries } from './listEntries.js';
import path from 'node:path';
import type { Config } from '../../shared/infra/config.js';
import { insideName, PathOutsideWorkspace, resolveInWorkspace } from '../../shared/workspaces/workspacePaths.js';
import type { WorkspaceToolName } from '../../shared/workspaces/workspaceRequest.js';
import type { OpenWorkspace } from './workspaceManager.js';
import type { SandboxDriver } from './sandbox.js';

/** A built-in tool as the model is offered it; `workspace` marks it as run by the worker in the run's workspace. */
export type WorkspaceTool = { name: WorkspaceToolName; description: string; inputSchema: Record<string, unknown>; workspace: true };

const OUTPUT_BYTES = 65_536;
const READ_MAX_LINES = 2_000;
const LIST_MAX_ENTRIES = 1_000;

/** The four tools of SPEC section 18, offered to every run that has a workspace. */
export const WORKSPACE_TOOLS: WorkspaceTool[] = [
  {
    name: 'exec',
    description:
      'Run a shell command (sh -c) in the workspace (/workspace) inside a sandbox; returns exitCode, stdout, stderr (64 KiB each at most), timedOut, truncated. RUNYARD_API_URL and RUNYARD_RUN_KEY are set.',
    inputSchema: {
      type: 'object',
      properties: { command: { type: 'string', minLength: 1, maxLength: 100_000 }, timeoutMs: { type: 'integer', minimum: 100 } },
      required: ['command'],
      additionalProperties: false,
    },
    workspace: true,
  },
  {
    name: 'read_file',
    description: 'Read a text file of the workspace: from line `offset` (0-based, default 0), at most `limit` lines (default and maximum 2000).',
    inputSchema: {
      type: 'object',
      properties: {
        path: { type: 'string', minLength: 1, maxLength: 1024 },
        offset: { type: 'integer', minimum: 0 },
        limit: { type: 'integer', minimum: 1, maximum: READ_MAX_LINES },
      },
      required: ['path'],
      additionalProperties: false,
    },
    workspace: true,
  },
  {
    name: 'write_file',
    description: 'Write a file of the workspace (created with its directories, or replaced).',
    inputSchema: {
      type: 'object',
      properties: { path: { type: 'string', minLength: 1, maxLength: 1024 }, content: { type: 'string', maxLength: 1_000_000 } },
      required: ['path', 'content'],
      additionalProperties: false,
    },
    workspace: true,
  },
  {
    name: 'list_files',
    description: 'List the files under a directory of the workspace (default: all of it), recursively, at most 1000 entries.',
    inputSchema: { type: 'object', properties: { path: { type: 'string', maxLength: 1024 } }, additionalProperties: false },
    workspace: true,
  },
];

/** Whether the call may change the workspace (its changes are then persisted with its result). */
export const changesWorkspace = (name: WorkspaceToolName) => name === 'exec' || name === 'write_file';

type Outcome = { output: unknown } | { error: string };

export type WorkspaceCallContext = {
  workspace: OpenWorkspace;
  driver: SandboxDriver;
  config: Config;
  runKey: string;
  apiBaseUrl: string;
  signal: AbortSignal;
};

/** runyard's API as the sandbox reaches it: the same port on the sandbox's own loopback, relayed to the api. */
function apiInSandbox(ctx: WorkspaceCallContext): { url: string; target?: { host: string; port: number } } {
  const url = new URL(ctx.apiBaseUrl);
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  if (ctx.config.WORKSPACE_NETWORK === 'none') return { url: `http://127.0.0.1:${port}` };
  return { url: `${url.protocol}//127.0.0.1:${port}`, target: { host: url.hostname, port } };
}

async function exec(ctx: WorkspaceCallContext, input: { command: string; timeoutMs?: number }): Promise<Outcome> {
  const api = apiInSandbox(ctx);
  const result = await ctx.driver.exec({
    dir: ctx.workspace.dir,
    command: input.command,
    env: { RUNYARD_API_URL: api.url, RUNYARD_RUN_KEY: ctx.runKey },
    limits: {
      timeoutMs: Math.min(input.timeoutMs ?? ctx.config.WORKSPACE_EXEC_TIMEOUT_MS, ctx.config.WORKSPACE_EXEC_TIMEOUT_MS),
      memoryMb: ctx.config.WORKSPACE_MEMORY_MB,
      maxProcesses: ctx.config.WORKSPACE_MAX_PROCESSES,
      maxFileBytes: ctx.config.WORKSPACE_MAX_BYTES,
      outputBytes: OUTPUT_BYTES,
    },
    signal: ctx.signal,
    api: api.target,
  });
  return { output: result };
}

async function readText(ctx: WorkspaceCallContext, input: { path: string; offset?: number; limit?: number }): Promise<Outcome> {
  const file = await resolveInWorkspace(ctx.workspace.dir, input.path);
  if (!(await lstat(file)).isFile()) return { error: `${input.path} is not a file` };
  const lines = (await readFile(file, 'utf8')).split('\n');
  const offset = input.offset ?? 0;
  const limit = Math.min(input.limit ?? READ_MAX_LINES, READ_MAX_LINES);
  let content = lines.slice(offset, offset + limit).join('\n');
  let truncated = offset + limit < lines.length;
  if (Buffer.byteLength(content) > OUTPUT_BYTES) {
    content = Buffer.from(content).subarray(0, OUTPUT_BYTES).toString('utf8');
    truncated = true;
  }
  return { output: { path: insideName(ctx.workspace.dir, file), content, offset, lines: lines.length, truncated } };
}

async function writeText(ctx: WorkspaceCallContext, input: { path: string; content: string }): Promise<Outcome> {
  const file = await resolveInWorkspace(ctx.workspace.dir, input.path, { mustExist: false });
  const existing = await lstat(file).catch(() => null);
  if (existing?.isDirectory()) return { error: `${input.path} is a directory` };
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, input.content);
  return { output: { path: insideName(ctx.workspace.dir, file), bytes: Buffer.byteLength(input.content) } };
}

async function listFiles(ctx: WorkspaceCallContext, input: { path?: string }): Promise<Outcome> {
  return { output: await listEntries(ctx.workspace.dir, input.path ?? '.', LIST_MAX_ENTRIES) };
}

/** Runs one built-in tool call; a path outside the workspace is an error result, never followed. */
export async function runWorkspaceTool(ctx: WorkspaceCallContext, name: WorkspaceToolName, input: unknown): Promise<Outcome> {
  try {
    switch (name) {
      case 'exec':
        return await exec(ctx, input as { command: string; timeoutMs?: number });
      case 'read_file':
        return await readText(ctx, input as { path: string; offset?: number; limit?: number });
      case 'write_file':
        return await writeText(ctx, input as { path: string; content: string });
      case 'list_files':
        return await listFiles(ctx, input as { path?: string });
    }
  } catch (err) {
    if (err instanceof PathOutsideWorkspace) return { error: err.message };
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EISDIR' || code === 'ENOTDIR' || code === 'EACCES')
      return { error: `${name}: ${(err as Error).message.replace(ctx.workspace.dir, '/workspace')}` };
    throw err;
  }
}
