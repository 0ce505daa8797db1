import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import type { Redis } from 'ioredis';
import { createApp } from '../../api/app.js';
import { buildApiDeps } from '../../api/buildDeps.js';
import type { ApiDeps } from '../../api/deps.js';
import { createLogger } from '../../shared/infra/logger.js';
import { startFleetMember, type FleetMember } from '../../worker/fleet/fleetMember.js';
import { createMetrics } from '../../shared/infra/metrics.js';
import type { SweepDeps } from '../../worker/fleet/sweep.js';
import { testConfig, testEnv, uniquePrefix } from './testConfig.js';

export type ApiHarness = { app: Express; deps: ApiDeps; prefix: string; url: () => Promise<string>; close: () => Promise<void> };

/** The api in this process (supertest mounts `app`; `url()` listens on a free port when a real socket is needed). */
export function startApi(overrides: Record<string, string> = {}): ApiHarness {
  const prefix = overrides.QUEUE_PREFIX ?? uniquePrefix();
  const config = testConfig({ ...overrides, QUEUE_PREFIX: prefix });
  const runtime = buildApiDeps(config, createLogger('api', config.LOG_LEVEL));
  const app = createApp(runtime.deps);
  let server: Server | undefined;
  return {
    app,
    deps: runtime.deps,
    prefix,
    url: async () => {
      server ??= await new Promise<Server>((resolve) => {
        const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
      });
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    },
    close: async () => {
      server?.closeAllConnections();
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
      await runtime.close();
    },
  };
}

const openWorkers = new Map<FleetMember, string>();

/** A worker in this process, sharing the api's queue prefix. */
export async function startWorker(prefix: string, overrides: Record<string, string> = {}): Promise<FleetMember> {
  const config = testConfig({ ...overrides, QUEUE_PREFIX: prefix });
  const worker = await startFleetMember(config, createLogger('worker', config.LOG_LEVEL));
  const startedBy = new Error('started here').stack ?? '';
  openWorkers.set(worker, startedBy);
  const close = worker.close;
  worker.close = (graceMs) => {
    openWorkers.delete(worker);
    return close(graceMs);
  };
  return worker;
}

/**
 * Where the in-process workers still open were started. They share the test database, so one a test
 * forgot would deliver other tests' webhooks and take their promotions (the root hooks check none is left).
 */
export const openInProcessWorkers = (): string[] => [...openWorkers.values()];

const ROOT = path.resolve(import.meta.dirname, '../..');

export type WorkerProcess = { child: ChildProcess; output: () => string; stopped: Promise<number | null> };

/** A worker as its own process (`tsx worker/main.ts`), for tests where a process must die. */
export function spawnWorker(prefix: string, overrides: Record<string, string> = {}): WorkerProcess {
  // `node --import tsx` rather than the tsx binary: one process, so signals reach the worker itself.
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'worker/main.ts')], {
    env: { PATH: process.env.PATH ?? '', ...testEnv({ LOG_LEVEL: 'info', ...overrides, QUEUE_PREFIX: prefix }) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const stopped = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => output, stopped };
}

/** An api as its own process (`api/main.ts`) on a port the system picks: `url` once it listens. */
export function spawnApi(prefix: string, overrides: Record<string, string> = {}): WorkerProcess & { url: Promise<string> } {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'api/main.ts')], {
    env: { PATH: process.env.PATH ?? '', ...testEnv({ LOG_LEVEL: 'info', PORT: '0', ...overrides, QUEUE_PREFIX: prefix }) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const stopped = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = waitFor(() => /"message":"api listening","port":(\d+)/.exec(output) ?? /"port":(\d+)[^\n]*"message":"api listening"/.exec(output), {
    timeoutMs: 20_000,
    what: 'the api process to listen',
  }).then((match) => `http://127.0.0.1:${match[1]}`);
  return { child, output: () => output, stopped, url };
}

/** Resolves when the spawned worker logged that it started. */
export async function workerReady(worker: WorkerProcess, timeoutMs = 20_000): Promise<void> {
  await waitFor(() => worker.output().includes('"worker started"'), { timeoutMs, what: 'the worker process to start' });
}

export async function waitFor<T>(probe: () => T | Promise<T>, opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {}): Promise<NonNullable<T>> {
  const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
  for (;;) {
    const value = await probe();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${opts.what ?? 'a condition'}`);
    await new Promise((resolve) => setTimeout(resolve, opts.intervalMs ?? 50));
  }
}

/** Redis loses everything of the deployment under `prefix` (a restart without persistence): its jobs, and the fair scheduler's state. */
export async function loseRedisData(api: ApiHarness): Promise<void> {
  const redis = api.deps.redis as Redis;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${api.prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) await redis.unlink(...keys);
  } while (cursor !== '0');
}

/** What the sweep needs, on an api harness's connections, with `overrides` in its config: a test runs a sweep pass itself. */
export const sweepDepsFor = (api: ApiHarness, overrides: Record<string, string> = {}): SweepDeps => ({
  config: testConfig({ QUEUE_PREFIX: api.prefix, ...overrides }),
  db: api.deps.db,
  sql: api.deps.sql,
  runQueues: api.deps.runQueues,
  admission: api.deps.admission,
  logger: createLogger('worker', 'silent'),
  metrics: createMetrics('worker'),
  redis: api.deps.redis,
  streamOptions: { prefix: api.prefix, maxEvents: 10_000, ttlMs: 3_600_000 },
});
