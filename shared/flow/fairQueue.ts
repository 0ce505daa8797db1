import { luaScript, withScript, type RedisClient } from '../infra/redis.js';

/**
 * The fair scheduler's state in Redis (SPEC section 15): the runs that wait for the fleet, per
 * account, and which account gets the next free place. All of it shares one hash tag (`{flow}`),
 * so one Lua script changes it atomically on a single Redis and on a Redis Cluster alike, whatever
 * QUEUE_SHARDS is — an account's running count and its place in line are fleet-wide.
 *
 * The order is start-time fair queueing: each account with waiting runs has a virtual time, the
 * service it had so far divided by its weight; the next run to start is the first (by priority,
 * then age) of the account with the lowest virtual time, whose virtual time then grows by
 * 1000 / weight. An account that starts waiting joins at the current virtual time (the one of the
 * run started last), so an idle account banks nothing and a flooding one cannot push it back by
 * its backlog. The workers say how many job slots they have; runs are released to the BullMQ
 * queues to fill the free ones plus `ahead` more, so the fleet never waits for a release
 * (work-conserving: an account alone gets all of it). A released job's BullMQ priority is its place
 * in line (queuePriority), so a run released later for an account that had less service still takes
 * the next free slot; an account with nothing waiting or running has its run released at once. An
 * account at its `maxRunning` leaves the rotation until one of its runs ends.
 *
 * Keys, under `<prefix>:{flow}:`:
 *   accounts          ZSET  account → virtual time (waiting and allowed to start)
 *   capped            HASH  account → virtual time (waiting, at its maxRunning)
 *   pending:<account> ZSET  runId → priority band · 1e12 + sequence
 *   jobs              HASH  runId → the job's data (JSON)
 *   waiting           HASH  runId → "account:submitted at (ms)"
 *   settings          HASH  account → "weight:maxRunning" (0: no cap)
 *   running:<account> ZSET  runId → lease expiry (ms): released to the queues, not yet ended
 *   dispatched        ZSET  runId → when released (ms), until a worker starts it
 *   busy              ZSET  runId → lease expiry (ms): started by a worker, not yet ended
 *   workers           HASH  worker → "slots:expiry": the fleet's job slots, renewed every second
 *   last              HASH  account → its virtual time when it last stopped waiting
 *   releasedvt        HASH  runId → its account's virtual time when it was released, until it starts
 *   vnow, seq         the virtual time of the run started last, a counter
 */
// The scripts: shared/lua/fairQueue.lua applies a batch of operations (submit, started, released,
// beat, withdraw, settings, workers) then releases what may start; fairQueueHolds.lua and
// fairQueueStats.lua read.
const FLOW_SCRIPT = luaScript('fairQueue');
const HOLDS_SCRIPT = luaScript('fairQueueHolds');
const STATS_SCRIPT = luaScript('fairQueueStats');

export type FlowOp =
  | { op: 'submit'; runId: string; accountId: string; band: number; weight: number; maxRunning: number | null; job: string }
  | { op: 'started' | 'released' | 'beat'; runId: string; accountId: string }
  | { op: 'withdraw'; runId: string }
  | { op: 'worker'; workerId: string; slots: number }
  | { op: 'settings'; accountId: string; weight: number; maxRunning: number | null }
  | { op: 'forget'; accountId: string };

/** A run released to the queues: its job, when it was submitted, and its account's virtual time when it was released (its place in line). */
export type Released = { job: string; submittedAt: number; virtualTime: number };

const BULLMQ_PRIORITIES = 2_000_000;

/**
 * The BullMQ priority a released run's job gets: its place in line, so a run released later for an
 * account that had less service starts before runs released earlier for one that had more — the
 * queue can hold many released runs (the workers never wait for a release) and a newcomer still
 * takes the next free slot. BullMQ's priorities end at 2^21: the place wraps every 2 million runs of
 * a weight-1 account, when for a moment the few runs released just before are ordered after those
 * released just after.
 */
export const queuePriority = (virtualTime: number): number => 1 + (Math.floor(virtualTime / 1000) % BULLMQ_PRIORITIES);
export type FlowStats = { waiting: number; accountsWaiting: number; accountsAtCap: number; releasedNotStarted: number };

type FlowCommands = {
  runyardFlow(key: string, ...args: (string | number)[]): Promise<string[]>;
  runyardFlowHolds(key: string, runId: string, releasedAfter: number): Promise<number>;
  runyardFlowStats(key: string): Promise<number[]>;
};

function opArgs(op: FlowOp): (string | number)[] {
  switch (op.op) {
    case 'submit':
      return ['submit', op.runId, op.accountId, op.band, op.weight, op.maxRunning ?? 0, op.job];
    case 'withdraw':
      return ['withdraw', op.runId];
    case 'worker':
      return ['worker', op.workerId, op.slots];
    case 'settings':
      return ['settings', op.accountId, op.weight, op.maxRunning ?? 0];
    case 'forget':
      return ['forget', op.accountId];
    default:
      return [op.op, op.runId, op.accountId];
  }
}

export type FairQueueOptions = {
  /** Runs released to the queues and not yet taken by a worker: at most this many. */
  ahead: number;
  /** How long a released or running run counts for its account without news (workers renew it). */
  leaseMs: number;
};

/** The scheduler's Redis state and its one script; a process's operations go through it in batches (RunAdmission). */
export class FairQueue {
  private readonly base: string;
  private readonly redis: RedisClient & FlowCommands;

  constructor(
    redis: RedisClient,
    prefix: string,
    private readonly options: FairQueueOptions,
  ) {
    this.base = `${prefix}:{flow}:`;
    withScript(redis, 'runyardFlow', 1, FLOW_SCRIPT);
    withScript(redis, 'runyardFlowHolds', 1, HOLDS_SCRIPT);
    this.redis = withScript<FlowCommands>(redis, 'runyardFlowStats', 1, STATS_SCRIPT);
  }

  /** Applies the operations, then releases what may start now: the released jobs, oldest decision first. */
  async apply(ops: FlowOp[], now = Date.now()): Promise<Released[]> {
    const reply = await this.redis.runyardFlow(this.base, now, this.options.ahead, this.options.leaseMs, STUCK_RELEASE_MS, ...ops.flatMap(opArgs));
    const released: Released[] = [];
    for (let i = 0; i < reply.length; i += 3) released.push({ job: reply[i]!, submittedAt: Number(reply[i + 1]), virtualTime: Number(reply[i + 2]) });
    return released;
  }

  /**
   * Whether the run waits here, or was released a moment ago (its job may be on its way to the
   * queue): the sweep must not call its job lost. A run released longer ago has a job, or lost it.
   */
  async holds(runId: string, now = Date.now()): Promise<boolean> {
    return (await this.redis.runyardFlowHolds(this.base, runId, now - RELEASE_GRACE_MS)) === 1;
  }

  async stats(): Promise<FlowStats> {
    const [waiting, accountsWaiting, accountsAtCap, releasedNotStarted] = await this.redis.runyardFlowStats(this.base);
    return { waiting: waiting!, accountsWaiting: accountsWaiting!, accountsAtCap: accountsAtCap!, releasedNotStarted: releasedNotStarted! };
  }
}

/**
 * A released run leaves `dispatched` when a worker starts it, or when it is submitted again (the
 * sweep re-queues a run whose job was lost), withdrawn or released. As a safety net against a
 * place in `ahead` held for ever, a release older than this no longer counts (a fleet that busy
 * then releases a few more runs than `ahead`).
 */
export const STUCK_RELEASE_MS = 600_000;

/** How long after its release a run's job may still be on its way to the queue. */
const RELEASE_GRACE_MS = 10_000;
