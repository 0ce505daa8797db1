import { parseDefaultLimits } from '../accounts/defaultLimits.js';
import 'dotenv/config';
import { isIP } from 'node:net';
import { z } from 'zod';

const DEV_SECRET = 'runyard-development-secret-do-not-use-in-production';

const booleanFromEnv = z.enum(['true', 'false', '1', '0', '']).transform((value) => value === 'true' || value === '1');

const optionalString = z
  .string()
  .optional()
  .transform((value) => (value === undefined || value.trim() === '' ? undefined : value.trim()));

const optionalUrl = optionalString.pipe(z.url().optional());

/** A comma-separated list (empty by default), each entry checked against `pattern`. */
const commaList = (pattern: RegExp, problem: string) =>
  z
    .string()
    .default('')
    .transform((value, ctx) => {
      const entries = value
        .split(',')
        .map((entry) => entry.trim())
        .filter(Boolean);
      for (const entry of entries) if (!pattern.test(entry)) ctx.addIssue({ code: 'custom', message: `"${entry}" ${problem}` });
      return entries;
    });

const PROXY_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/** What proxy-addr (express's `trust proxy`) accepts: a name, an address, or address/prefix-or-netmask. */
function isTrustedProxyEntry(entry: string): boolean {
  if (PROXY_NAMES.has(entry)) return true;
  const [address, range, ...rest] = entry.split('/');
  if (rest.length > 0 || !address) return false;
  const family = isIP(address);
  if (family === 0) return false;
  if (range === undefined) return true;
  if (/^\d+$/.test(range)) return Number(range) <= (family === 4 ? 32 : 128);
  return family === 4 && isIP(range) === 4;
}

const ms = (fallback: number, min = 0) => z.coerce.number().int().min(min).default(fallback);

export const configSchema = z
  .object({
    NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
    DATABASE_URL: z.url().default('postgresql://postgres@127.0.0.1:5432/runyard'),
    DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(200).default(10),
    REDIS_URL: z.url().default('redis://127.0.0.1:6379'),
    // A Redis Cluster's seed nodes (host:port,...): when set, runyard talks to the cluster and REDIS_URL is not used.
    REDIS_CLUSTER_NODES: commaList(/^[^\s:,]+:\d{1,5}$/, 'is not host:port'),
    // How many BullMQ run queues (each with its own hash tag): at least the cluster's masters spreads the queue work over all of them.
    QUEUE_SHARDS: z.coerce.number().int().min(1).max(64).default(1),
    PORT: z.coerce.number().int().min(0).max(65535).default(3000),
    PUBLIC_BASE_URL: optionalUrl,
    DEFAULT_MODEL: z
      .string()
      .regex(/^[a-z0-9-]+\/[\w.:-]+$/, 'must look like provider/model')
      .default('local/echo'),
    OPENAI_API_KEY: optionalString,
    OPENAI_BASE_URL: optionalUrl,
    ANTHROPIC_API_KEY: optionalString,
    ANTHROPIC_BASE_URL: optionalUrl,
    PROVIDER_TIMEOUT_MS: ms(120_000, 100),
    PROVIDER_IDLE_TIMEOUT_MS: ms(30_000, 100),
    LOCAL_MODEL_DELAY_MS: ms(20),
    // Context windows (SPEC section 13): local/echo's (a token per word), and overrides or additions to the built-in table.
    LOCAL_MODEL_CONTEXT_TOKENS: z.coerce.number().int().min(16).default(8192),
    MODEL_CONTEXT_TOKENS: commaList(/^[a-z0-9-]+\/[\w.:*-]+=\d+$/, 'is not provider/model=tokens (or provider/*=tokens)'),
    // A chat is compacted once a model call's input reaches this percentage of the window (per account: accounts settings).
    COMPACTION_THRESHOLD_PERCENT: z.coerce.number().int().min(1).max(100).default(70),
    // Adds the worker's emit time to each text delta (providerMetadata.runyard.emittedAt): the benchmark's streaming-overhead probe.
    RUNYARD_STREAM_TIMINGS: booleanFromEnv.default(false),
    ADMIN_TOKEN: optionalString.pipe(z.string().min(16, 'must be at least 16 characters').optional()),
    BULL_BOARD_READ_ONLY: booleanFromEnv.default(false),
    RUNYARD_SECRET: optionalString.pipe(z.string().min(16, 'must be at least 16 characters').optional()),
    WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(10_000).default(16),
    // Flow control (SPEC section 15): fair share between accounts, maxRunning and priorities. Off: the queues are first in, first out.
    FAIR_SCHEDULING: booleanFromEnv.default(true),
    // Runs the fair scheduler releases to the queues beyond the fleet's free job slots (so workers never wait for a release).
    FLOW_RELEASE_AHEAD: z.coerce.number().int().min(1).max(10_000).default(32),
    // Fleet-wide model rate limits: model-or-pattern=rpm:N,tpm:N;... (e.g. openai/gpt-4o-mini=rpm:500,tpm:200000;anthropic/*=rpm:50).
    MODEL_RATE_LIMITS: z
      .string()
      .default('')
      .superRefine((value, ctx) => {
        for (const rule of value
          .split(';')
          .map((entry) => entry.trim())
          .filter(Boolean))
          if (!/^[a-z0-9-]+\/[\w.:*-]+=(rpm|tpm):\d+(,(rpm|tpm):\d+)?$/.test(rule))
            ctx.addIssue({ code: 'custom', message: `"${rule}" is not provider/model=rpm:N,tpm:N (or provider/*=...)` });
      }),
    // Spend limits of accounts without their own (SPEC section 21): tokens=N/period,spendUsd=N/period (e.g. tokens=1000000/day,spendUsd=5/day).
    DEFAULT_LIMITS: z
      .string()
      .default('')
      .superRefine((value, ctx) => {
        try {
          parseDefaultLimits(value);
        } catch (err) {
          ctx.addIssue({ code: 'custom', message: (err as Error).message });
        }
      }),
    // The window MODEL_RATE_LIMITS count in (a minute; tests shorten it).
    MODEL_RATE_LIMIT_WINDOW_MS: ms(60_000, 100),
    WORKER_ID: optionalString,
    // Empty is unset (no metrics server), not port 0.
    WORKER_METRICS_PORT: optionalString.pipe(z.coerce.number<string | undefined>().int().min(0).max(65535).optional()),
    // Loopback unless the operator opens it: /metrics should not face the internet by accident.
    WORKER_METRICS_HOST: z.string().min(1).default('127.0.0.1'),
    // Which proxies in front of the api to trust for the client address (X-Forwarded-For): none by
    // default, so no caller can pick its own address; `true` (every hop: only when nothing reaches the
    // api but through the proxy), a hop count (1) or addresses/subnets/names that express understands
    // (loopback, linklocal, uniquelocal, 10.0.0.0/8), comma-separated.
    TRUST_PROXY: z
      .string()
      .default('')
      .transform((value, ctx): boolean | number | string => {
        const trimmed = value.trim();
        if (trimmed === '' || trimmed === 'false') return false;
        if (trimmed === 'true') return true;
        if (/^\d+$/.test(trimmed)) return Number(trimmed);
        for (const entry of trimmed.split(',').map((part) => part.trim())) {
          if (!isTrustedProxyEntry(entry))
            ctx.addIssue({ code: 'custom', message: `"${entry}" is not true, false, a hop count, an address, a subnet or loopback/linklocal/uniquelocal` });
        }
        return trimmed;
      }),
    // Failed authentications an address may make a minute before its failing attempts get 429 (a valid key still works).
    AUTH_FAILURES_PER_MINUTE: z.coerce.number().int().min(1).default(60),
    // Failed authentications the whole fleet accepts a minute from all addresses together: rotating addresses cannot guess without bound.
    AUTH_FAILURES_FLEET_PER_MINUTE: z.coerce.number().int().min(1).default(6_000),
    // Open streams (SSE) one key may hold at once, across the api fleet: past it, 429 too_many_streams.
    STREAMS_PER_KEY: z.coerce.number().int().min(1).default(100),
    // When set, GET /metrics asks for it as a Bearer token (the api's port may face more than the scraper).
    METRICS_TOKEN: optionalString.pipe(z.string().min(16, 'must be at least 16 characters').optional()),
    RUN_LOCK_MS: ms(30_000, 1_000),
    RUN_STALE_AFTER_MS: ms(60_000, 1_000),
    RUN_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(20).default(3),
    RUN_RETRY_BASE_MS: ms(1_000, 10),
    RUN_MAX_STALLS: z.coerce.number().int().min(0).max(20).default(2),
    RUN_SWEEP_EVERY_MS: ms(15_000, 500),
    RUN_ACTION_TIMEOUT_MS: ms(86_400_000, 1_000),
    RUN_DEPENDENCY_WAIT_MS: ms(600_000, 1_000),
    RUN_STREAM_TTL_MS: ms(3_600_000, 60_000),
    RUN_STREAM_MAX_EVENTS: z.coerce.number().int().min(100).default(10_000),
    EPHEMERAL_KEY_TTL_MS: z.coerce.number().int().min(10_000).max(3_600_000, 'must be at most 3600000 (1 h)').default(900_000),
    // History kept (SPEC section 17): an idle chat whose last activity is older is erased (per account: accounts settings --retention-days).
    // No default: a deployment that never set it keeps every chat (nobody loses history to a default they did not choose).
    RETENTION_DAYS: optionalString.pipe(z.coerce.number<string | undefined>().int().min(1).optional()),
    RETENTION_EVERY_MS: ms(3_600_000, 1_000),
    // After a retention pass that erased chats, VACUUM the history tables so the space is reused (autovacuum may be off).
    RETENTION_VACUUM: booleanFromEnv.default(true),
    // Messages waiting behind a chat's active run (SPEC section 12): past it, 429 chat_queue_full.
    CHAT_MAX_QUEUED_MESSAGES: z.coerce.number().int().min(0).max(1_000).default(20),
    // How often an idle worker looks for runs that queued messages became (pending_run_jobs).
    CHAT_PROMOTION_POLL_MS: ms(200, 10),
    ACCOUNT_MAX_ACTIVE_RUNS: z.coerce.number().int().min(1).default(50),
    RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(1).default(600),
    API_KEY_CACHE_MS: ms(2_000),
    SHUTDOWN_GRACE_MS: ms(25_000),
    SSE_KEEPALIVE_MS: ms(15_000, 10),
    QUEUE_PREFIX: z
      .string()
      .regex(/^[\w{}-]+$/, 'letters, digits, _ - and a {hash-tag} only')
      .default('runyard'),
    STREAM_TOKEN_TTL_MS: z.coerce.number().int().min(10_000).max(3_600_000, 'must be at most 3600000 (1 h)').default(600_000),
    // Web origins (https://app.example.com) allowed to read a run's stream, the run and its messages from a browser.
    STREAM_CORS_ORIGINS: commaList(/^https?:\/\/[^/\s]+$/, 'is not an origin (scheme://host[:port], no path)'),
    // Server tools, MCP servers and webhooks (SPEC sections 9 and 11): the origins or url prefixes they may live under.
    TOOL_URL_ALLOWLIST: commaList(/^https?:\/\/[^/\s]+/, 'is not an http(s) origin or url prefix'),
    WEBHOOK_TIMEOUT_MS: ms(10_000, 100),
    WEBHOOK_RETRY_BASE_MS: ms(1_000, 10),
    WEBHOOK_RETRY_FOR_MS: ms(86_400_000, 1_000),
    WEBHOOK_POLL_MS: ms(250, 10),
    WEBHOOK_RETENTION_MS: ms(7 * 86_400_000, 60_000),
    TOOL_TIMEOUT_MS: ms(30_000, 100),
    TOOL_MAX_OUTPUT_BYTES: z.coerce.number().int().min(1_024).default(262_144),
    TOOL_MAX_TRIES: z.coerce.number().int().min(1).max(10).default(3),
    TOOL_RETRY_BASE_MS: ms(500, 10),
    TOOL_SECRET_GRACE_MS: ms(86_400_000),
    // The most a tool schema's compilation (a POST's schemas together) or one input's validation may take, on the schema thread.
    TOOL_SCHEMA_TIMEOUT_MS: ms(2_000, 50),
    // Chats without a title get one after their first run (SPEC section 19); false: never (their jobs are dropped).
    CHAT_TITLES: booleanFromEnv.default(true),
    // The model that titles chats after their first run (SPEC section 19); empty: the chat's own model.
    TITLE_MODEL: optionalString.pipe(
      z
        .string()
        .regex(/^[a-z0-9-]+\/[\w.:-]+$/, 'must look like provider/model')
        .optional(),
    ),
    // Workspaces (SPEC section 18): the sandbox a run's built-in tools (exec, read_file, write_file, list_files) run in.
    // auto: bubblewrap when the machine has it, else workspaces are off; bwrap: required; off: never.
    WORKSPACE_DRIVER: z.enum(['auto', 'bwrap', 'off']).default('auto'),
    // What a command may reach: runyard's API only (api), or nothing (none).
    WORKSPACE_NETWORK: z.enum(['api', 'none']).default('api'),
    WORKSPACE_EXEC_TIMEOUT_MS: ms(60_000, 100),
    WORKSPACE_MEMORY_MB: z.coerce.number().int().min(16).max(65_536).default(512),
    WORKSPACE_MAX_PROCESSES: z.coerce.number().int().min(4).max(100_000).default(128),
    WORKSPACE_MAX_BYTES: z.coerce.number().int().min(1_048_576).default(1_073_741_824),
    // How long a worker keeps a session's materialised copy after its run, for the next one.
    WORKSPACE_IDLE_MS: ms(600_000, 1_000),
    // Where a worker materialises workspaces (empty: the system's temporary directory).
    WORKSPACE_DIR: optionalString,
    // Repositories a workspace may be cloned from: url prefixes (https://github.com/acme/).
    WORKSPACE_GIT_ALLOWLIST: commaList(/^(https?|git):\/\/[^/\s]+/, 'is not an http(s) or git url prefix'),
    // Where workspace content is stored: postgres (the database runyard already has).
    BLOB_STORE: z
      .string()
      .default('postgres')
      .refine((value) => value === 'postgres' || /^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?$/.test(value), 'is not postgres or s3://bucket/prefix'),
    // BLOB_STORE=s3://…: another S3-compatible service (MinIO, R2, …) and its region; path-style urls (http://host/bucket/key) where it needs them.
    S3_ENDPOINT: optionalUrl,
    S3_REGION: z.string().min(1).default('us-east-1'),
    S3_FORCE_PATH_STYLE: booleanFromEnv.default(false),
    // Its credentials (unset: the AWS SDK's own chain — AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile, an instance role).
    S3_ACCESS_KEY_ID: optionalString,
    S3_SECRET_ACCESS_KEY: optionalString,
    // Attachments (SPEC section 20): the largest file an upload may carry, an account's total by default, and
    // how many attachment bytes a worker holds at once for the model calls it is sending (the others wait).
    FILE_MAX_BYTES: z.coerce.number().int().min(1_024).max(1_073_741_824).default(20_971_520),
    FILE_QUOTA_MB: z.coerce.number().int().min(1).default(1_024),
    ATTACHMENT_BYTES_IN_FLIGHT_MB: z.coerce.number().int().min(1).max(4_096).default(48),
    // Tracing (SPEC section 16): set an OTLP/HTTP endpoint to export traces; the SDK reads the other OTEL_* variables itself.
    OTEL_EXPORTER_OTLP_ENDPOINT: optionalUrl,
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: optionalUrl,
    OTEL_SDK_DISABLED: booleanFromEnv.default(false),
    LOG_LEVEL: z.enum(['silent', 'error', 'warn', 'info', 'http', 'debug', 'silly']).default('info'),
  })
  .superRefine((env, ctx) => {
    if (env.NODE_ENV === 'production' && !env.RUNYARD_SECRET) {
      ctx.addIssue({ code: 'custom', path: ['RUNYARD_SECRET'], message: 'is required when NODE_ENV=production' });
    }
    if (env.REDIS_CLUSTER_NODES.length > 0 && /[{}]/.test(env.QUEUE_PREFIX)) {
      // A hash tag in the prefix would put every key of the deployment in one slot: one master doing all the work.
      ctx.addIssue({ code: 'custom', path: ['QUEUE_PREFIX'], message: 'must not contain a {hash-tag} on a Redis Cluster (runyard tags its keys itself)' });
    }
  })
  .transform((env) => ({
    ...env,
    RUNYARD_SECRET: env.RUNYARD_SECRET ?? DEV_SECRET,
    usingDevelopmentSecret: env.RUNYARD_SECRET === undefined,
  }));

export type Config = Readonly<z.infer<typeof configSchema>>;

export class ConfigError extends Error {
  constructor(readonly issues: string[]) {
    super(`invalid configuration:\n${issues.map((issue) => `  - ${issue}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Parses and freezes the configuration; the only place that reads process.env. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Record<string, string>> = {}): Config {
  const result = configSchema.safeParse({ ...env, ...overrides });
  if (!result.success) {
    throw new ConfigError(result.error.issues.map((issue) => `${issue.path.join('.') || '(environment)'} ${issue.message}`));
  }
  return Object.freeze(result.data);
}

/** For entry points: a bad configuration stops the process with a message naming the variable. */
export function loadConfigOrExit(): Config {
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`runyard: ${err.message}`);
      process.exit(78);
    }
    throw err;
  }
}
