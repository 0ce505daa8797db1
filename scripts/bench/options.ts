import { parseArgs } from 'node:util';

/**
 * `npm run bench`'s command line and the settings every phase shares: runyard against raw BullMQ on
 * this machine, on a database and queue prefix of its own. docs/performance.md says what each
 * figure means.
 */
export const { values: opts } = parseArgs({
  options: {
    runs: { type: 'string', default: '5000' },
    workers: { type: 'string', default: '2' },
    concurrency: { type: 'string', default: '16' },
    rate: { type: 'string', default: '200' },
    'rate-seconds': { type: 'string', default: '10' },
    'stream-clients': { type: 'string', default: '100' },
    'idle-streams': { type: 'string', default: '1000' },
    history: { type: 'string', default: '50000' },
    warmup: { type: 'string', default: '10000' },
    json: { type: 'string' },
    profile: { type: 'boolean', default: false },
    'perf-map': { type: 'boolean', default: false },
    'agent-runs': { type: 'string', default: '2000' },
    'agent-in-flight': { type: 'string', default: '50' },
    'webhook-runs': { type: 'string', default: '2000' },
    // Workspaces (SPEC section 18): runs of 10 `exec true` steps, one at a time (0: skip; needs bubblewrap).
    'workspace-runs': { type: 'string', default: '20' },
    // Long chats (compaction): chats per mode (plain and compacted), and turns per chat.
    'long-chats': { type: 'string', default: '20' },
    'chat-turns': { type: 'string', default: '50' },
    // Tracing's cost: runs end to end on fresh processes without tracing, then with every run traced.
    'tracing-runs': { type: 'string', default: '3000' },
    // The noisy neighbour (flow control): the flooding account's runs, FIFO and then fair. Heavy: off by default (5000 is its figure's scale).
    'noisy-runs': { type: 'string', default: '0' },
    // Retention: finished runs seeded past retention and pruned while the api takes POSTs at --rate/s, three cycles.
    // Heavy (an hour at 1000000): off by default, so `npm run bench` ends in minutes.
    'retention-runs': { type: 'string', default: '0' },
    // SPEC section 22: runs timed POST → first text-delta at an SSE client, at 50/s; runs held in flight in one fresh worker for its memory per run (0: skip).
    'first-token-runs': { type: 'string', default: '500' },
    'memory-runs': { type: 'string', default: '2000' },
    // On a local Redis Cluster (3 masters + 3 replicas, started by the bench): end-to-end runs only.
    cluster: { type: 'boolean', default: false },
    shards: { type: 'string', default: '3' },
  },
});
export const N = Number(opts.runs);
export const WORKERS = Number(opts.workers);
export const CONCURRENCY = Number(opts.concurrency);
export const RATE = Number(opts.rate);
export const RATE_SECONDS = Number(opts['rate-seconds']);
export const STREAM_CLIENTS = Number(opts['stream-clients']);
export const IDLE_STREAMS = Number(opts['idle-streams']);
export const HISTORY = Number(opts.history);
export const WARMUP = Number(opts.warmup);
export const AGENT_RUNS = Number(opts['agent-runs']);
export const AGENT_IN_FLIGHT = Number(opts['agent-in-flight']);
export const WEBHOOK_RUNS = Number(opts['webhook-runs']);
export const WORKSPACE_RUNS = Number(opts['workspace-runs']);
export const LONG_CHATS = Number(opts['long-chats']);
export const CHAT_TURNS = Number(opts['chat-turns']);
export const TRACING_RUNS = Number(opts['tracing-runs']);
export const NOISY_RUNS = Number(opts['noisy-runs']);
export const RETENTION_RUNS = Number(opts['retention-runs']);
export const FIRST_TOKEN_RUNS = Number(opts['first-token-runs']);
export const MEMORY_RUNS = Number(opts['memory-runs']);
/** SPEC section 22: the first token's rate. */
export const FIRST_TOKEN_RATE = 50;
/** local/echo's window in the bench, and the share of it at which the compacted long chats compact. */
export const LONG_CHAT_WINDOW_TOKENS = 8192;
export const LONG_CHAT_COMPACT_AT_PERCENT = 5;

export const DATABASE_URL = process.env.BENCH_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/runyard_bench';
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
export const PREFIX = `runyard-bench-${process.pid}`;
export const PROMPT = Array.from({ length: 20 }, (_, i) => `token${i}`).join(' ');
export const log = (message: string) => process.stderr.write(`bench: ${message}\n`);

/** The targets for this machine. */
export const TARGETS = {
  ratioAtLeast: 0.15,
  postP99UnderMs: 25,
  streamingOverheadP99UnderMs: 10,
  // SPEC section 22: at half the load that saturates the machine.
  agentStepOverheadP99UnderMs: 10,
  agentCpuMsPerStepAtMost: 1.5,
  // SPEC section 22: transition → receiver, idle fleet.
  webhooksP50UnderMs: 50,
  webhooksP99UnderMs: 200,
  // SPEC section 22: POST → first text-delta, minus the provider's own time to first token, at 50 runs/s.
  firstTokenP50UnderMs: 15,
  firstTokenP99UnderMs: 50,
  // SPEC section 22: worker RSS per in-flight run, 2,000 in flight.
  kibPerInFlightRunAtMost: 150,
};
