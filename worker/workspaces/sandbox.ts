import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, rmdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Logger } from '../../shared/infra/logger.js';

/** What one command may use (SPEC section 18); the driver enforces each with what the machine has. */
export type ExecLimits = {
  timeoutMs: number;
  memoryMb: number;
  maxProcesses: number;
  /** The largest file a command may write (the workspace's size is checked after the call). */
  maxFileBytes: number;
  /** Kept of each of stdout and stderr; the rest is dropped and the result says `truncated`. */
  outputBytes: number;
};

export type ExecResult = { exitCode: number | null; stdout: string; stderr: string; timedOut: boolean; truncated: boolean };

export type ExecRequest = {
  /** The workspace's directory on the worker: bound at /workspace, the only writable place but /tmp. */
  dir: string;
  command: string;
  /** The whole environment the command sees (nothing of the worker's). */
  env: Record<string, string>;
  limits: ExecLimits;
  signal: AbortSignal;
  /** WORKSPACE_NETWORK=api: runyard's API as host:port, reachable inside at the same port on 127.0.0.1. */
  api?: { host: string; port: number };
};

/**
 * Where commands run. bubblewrap on Linux today; the interface leaves room for remote sandboxes
 * (E2B, Daytona, Vercel Sandbox) that take the same request.
 */
export interface SandboxDriver {
  readonly name: string;
  exec(request: ExecRequest): Promise<ExecResult>;
}

const LAUNCHER = path.join(import.meta.dirname, 'sandboxLauncher.cjs');

/**
 * Per-command control groups (v1 `memory` and `pids`, as root on this kind of machine; v2 where it
 * is mounted writable): the hard memory and process limits. Where the machine allows neither, the
 * command's shell sets rlimits instead (RLIMIT_AS for memory; RLIMIT_NPROC, which root ignores).
 */
class ControlGroups {
  private readonly v1: { memory?: string; pids?: string } = {};

  constructor(private readonly logger: Logger) {
    for (const controller of ['memory', 'pids'] as const) {
      const root = `/sys/fs/cgroup/${controller}`;
      try {
        const dir = path.join(root, 'runyard');
        mkdirSync(dir, { recursive: true });
        const probe = path.join(dir, `probe-${process.pid}`);
        mkdirSync(probe, { recursive: true });
        rmdirSync(probe);
        this.v1[controller] = dir;
      } catch {
        // Not available (or not ours to write): rlimits only.
      }
    }
    logger.info('workspace sandbox limits', {
      memory: this.v1.memory ? 'cgroup v1 memory' : 'RLIMIT_AS',
      processes: this.v1.pids ? 'cgroup v1 pids' : 'RLIMIT_NPROC (not enforced for root)',
    });
  }

  get enforcesMemory(): boolean {
    return this.v1.memory !== undefined;
  }

  /** Makes a group for one command; the paths of its cgroup.procs files, and how to remove it. */
  create(limits: ExecLimits): { procs: string[]; remove: () => void } {
    const id = `exec-${randomUUID()}`;
    const made: string[] = [];
    const procs: string[] = [];
    const set = (controller: 'memory' | 'pids', file: string, value: string) => {
      const base = this.v1[controller];
      if (!base) return;
      const dir = path.join(base, id);
      try {
        if (!made.includes(dir)) {
          mkdirSync(dir);
          made.push(dir);
          procs.push(path.join(dir, 'cgroup.procs'));
        }
        writeFileSync(path.join(dir, file), value);
      } catch (err) {
        this.logger.warn('could not set a workspace limit', { controller, error: (err as Error).message });
      }
    };
    set('memory', 'memory.limit_in_bytes', String(limits.memoryMb * 1024 * 1024));
    set('memory', 'memory.memsw.limit_in_bytes', String(limits.memoryMb * 1024 * 1024));
    set('pids', 'pids.max', String(limits.maxProcesses));
    return {
      procs,
      remove: () => {
        for (const dir of made) {
          // The group empties once its processes are gone; a moment after a kill it may still hold one.
          for (let tries = 0; tries < 50; tries++) {
            try {
              rmdirSync(dir);
              break;
            } catch {
              Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
            }
          }
        }
      },
    };
  }
}

/** A Unix socket the sandbox's launcher relays connections to: each one is piped to runyard's API and nowhere else. */
async function apiRelay(socketPath: string, api: { host: string; port: number }): Promise<{ close: () => void }> {
  const server = net.createServer((inbound) => {
    const outbound = net.connect(api.port, api.host);
    inbound.pipe(outbound).pipe(inbound);
    const close = () => {
      inbound.destroy();
      outbound.destroy();
    };
    inbound.on('error', close);
    outbound.on('error', close);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, resolve);
  });
  return { close: () => server.close() };
}

/** Collects at most `limit` bytes of a stream; the rest is read and dropped. */
function capped(limit: number) {
  const chunks: Buffer[] = [];
  let size = 0;
  let truncated = false;
  return {
    push(chunk: Buffer) {
      if (size >= limit) {
        truncated = true;
        return;
      }
      const room = limit - size;
      if (chunk.length > room) truncated = true;
      chunks.push(chunk.subarray(0, room));
      size += Math.min(room, chunk.length);
    },
    text: () => Buffer.concat(chunks).toString('utf8'),
    get truncated() {
      return truncated;
    },
  };
}

/**
 * WORKSPACE_DRIVER=bwrap: each command in a fresh bubblewrap sandbox — its own mount, PID, network,
 * IPC, UTS and user namespaces; /usr read-only (with the /bin, /lib symlinks), /etc/alternatives, a
 * fresh /proc, /dev and a size-capped /tmp, the workspace bound at /workspace; no other file of the
 * host (no /etc/shadow, no other workspace, not the worker's files); the environment cleared to what
 * the request gives; all capabilities dropped. Network: none, or (api) only the relay to runyard's
 * API. The whole process tree dies with the sandbox: the PID namespace ends when its first process
 * does, and the worker kills that on timeout or when the run stops.
 */
export class BwrapDriver implements SandboxDriver {
  readonly name = 'bwrap';
  private readonly groups: ControlGroups;

  constructor(
    private readonly bwrap: string,
    private readonly socketDir: string,
    private readonly logger: Logger,
  ) {
    this.groups = new ControlGroups(logger);
    mkdirSync(socketDir, { recursive: true });
  }

  async exec(request: ExecRequest): Promise<ExecResult> {
    const { limits } = request;
    const socketPath = path.join(this.socketDir, `${randomUUID()}.sock`);
    const relay = request.api ? await apiRelay(socketPath, request.api) : undefined;
    const group = this.groups.create(limits);
    try {
      return await this.run(request, group.procs, relay ? socketPath : undefined);
    } finally {
      relay?.close();
      group.remove();
    }
  }

  private run(request: ExecRequest, cgroupProcs: string[], socketPath: string | undefined): Promise<ExecResult> {
    const { limits } = request;
    const kib = (bytes: number) => Math.max(1, Math.floor(bytes / 1024));
    // What the command's own shell sets before it runs (dash's -f counts 512-byte blocks).
    const limitScript = [
      this.groups.enforcesMemory ? '' : `ulimit -v ${kib(limits.memoryMb * 1024 * 1024)}`,
      `ulimit -u ${limits.maxProcesses} 2>/dev/null`,
      `ulimit -f ${Math.max(1, Math.floor(limits.maxFileBytes / 512))}`,
      'ulimit -c 0',
    ]
      .filter(Boolean)
      .join('\n');
    const args = [
      '--unshare-all',
      '--unshare-user',
      // Its own UTS namespace: the machine's name is none of the command's business.
      '--hostname',
      'workspace',
      '--uid',
      '1000',
      '--gid',
      '1000',
      '--die-with-parent',
      '--new-session',
      '--cap-drop',
      'ALL',
      '--ro-bind',
      '/usr',
      '/usr',
      '--symlink',
      'usr/bin',
      '/bin',
      '--symlink',
      'usr/sbin',
      '/sbin',
      '--symlink',
      'usr/lib',
      '/lib',
      ...(existsSync('/usr/lib64') ? ['--symlink', 'usr/lib64', '/lib64'] : []),
      '--ro-bind-try',
      '/etc/alternatives',
      '/etc/alternatives',
      '--ro-bind-try',
      '/etc/ssl',
      '/etc/ssl',
      '--proc',
      '/proc',
      '--dev',
      '/dev',
      '--size',
      String(Math.min(limits.memoryMb, 256) * 1024 * 1024),
      '--tmpfs',
      '/tmp',
      '--bind',
      request.dir,
      '/workspace',
      '--chdir',
      '/workspace',
      '--ro-bind',
      process.execPath,
      '/opt/runyard/node',
      '--ro-bind',
      LAUNCHER,
      '/opt/runyard/launcher.cjs',
      ...(socketPath ? ['--ro-bind', socketPath, '/run/runyard/api.sock'] : []),
      '--clearenv',
      ...Object.entries({ PATH: '/usr/local/bin:/usr/bin:/bin', HOME: '/workspace', LANG: 'C.UTF-8', ...request.env }).flatMap(([name, value]) => [
        '--setenv',
        name,
        value,
      ]),
      '--',
      '/opt/runyard/node',
      '/opt/runyard/launcher.cjs',
      socketPath ? '/run/runyard/api.sock' : '-',
      String(request.api?.port ?? 0),
      limitScript,
      request.command,
    ];
    // The outer shell joins the command's control groups before it becomes bwrap: everything inside is counted.
    const join = cgroupProcs.map((file) => `echo $$ > '${file}'`).join(' && ');
    const child = spawn('/bin/sh', ['-c', `${join ? `${join} && ` : ''}exec "$0" "$@"`, this.bwrap, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      env: {},
      cwd: '/',
    });
    const stdout = capped(request.limits.outputBytes);
    const stderr = capped(request.limits.outputBytes);
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    let timedOut = false;
    const killTree = () => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killTree();
    }, limits.timeoutMs);
    const onAbort = () => killTree();
    request.signal.addEventListener('abort', onAbort, { once: true });
    return new Promise<ExecResult>((resolve) => {
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        request.signal.removeEventListener('abort', onAbort);
        resolve({
          exitCode: code ?? (signal ? 128 + 9 : null),
          stdout: stdout.text(),
          stderr: stderr.text(),
          timedOut,
          truncated: stdout.truncated || stderr.truncated,
        });
      });
      child.on('error', (err) => {
        clearTimeout(timer);
        this.logger.warn('could not start the sandbox', { error: err.message });
        resolve({ exitCode: 127, stdout: '', stderr: `the sandbox could not start: ${err.message}`, timedOut: false, truncated: false });
      });
    });
  }
}
