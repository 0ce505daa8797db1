import type { RedisClient } from '../infra/redis.js';

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
const FLOW_SCRIPT = `
local base = KEYS[1]
local now = tonumber(ARGV[1])
local ahead = tonumber(ARGV[2])
local lease = tonumber(ARGV[3])
local dispatchStuckMs = tonumber(ARGV[4])
local WORKER_TTL_MS = 5000
local ACCOUNTS, CAPPED, JOBS, WAITING = base .. 'accounts', base .. 'capped', base .. 'jobs', base .. 'waiting'
local SETTINGS, DISPATCHED, VNOW, SEQ, LAST = base .. 'settings', base .. 'dispatched', base .. 'vnow', base .. 'seq', base .. 'last'
local WORKERS, BUSY, RELEASED_VT = base .. 'workers', base .. 'busy', base .. 'releasedvt'

-- The current virtual time is that of the run started last (a run released but not yet started is
-- still in line): an account that starts waiting joins there, before the runs released after it.
local function startedAt(runId)
  local vt = redis.call('HGET', RELEASED_VT, runId)
  if not vt then return end
  if tonumber(vt) > tonumber(redis.call('GET', VNOW) or '0') then redis.call('SET', VNOW, vt) end
end

-- A released run is no longer on its way to the queues (started, submitted again, withdrawn, ended).
local function forgetRelease(runId)
  redis.call('ZREM', DISPATCHED, runId)
  redis.call('HDEL', RELEASED_VT, runId)
end

local function settingsOf(account)
  local value = redis.call('HGET', SETTINGS, account)
  if not value then return 1, 0 end
  local weight, cap = string.match(value, '^(%d+):(%d+)$')
  return tonumber(weight), tonumber(cap)
end

local function runningOf(account)
  local key = base .. 'running:' .. account
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  return redis.call('ZCARD', key)
end

-- Where an account with virtual time vt belongs: in the rotation, set aside at its cap, or nowhere (nothing waits).
local function place(account, vt)
  if redis.call('ZCARD', base .. 'pending:' .. account) == 0 then
    redis.call('ZREM', ACCOUNTS, account)
    redis.call('HDEL', CAPPED, account)
    redis.call('HSET', LAST, account, vt)
    return
  end
  local _, cap = settingsOf(account)
  if cap > 0 and runningOf(account) >= cap then
    redis.call('ZREM', ACCOUNTS, account)
    redis.call('HSET', CAPPED, account, vt)
  else
    redis.call('HDEL', CAPPED, account)
    redis.call('ZADD', ACCOUNTS, vt, account)
  end
end

-- An account in line keeps its virtual time; one that starts waiting again joins at the current
-- virtual time, or at its own if that is later (what it used before it left still counts).
local function currentVt(account)
  local vt = redis.call('ZSCORE', ACCOUNTS, account) or redis.call('HGET', CAPPED, account)
  if vt then return tonumber(vt) end
  local vnow = tonumber(redis.call('GET', VNOW) or '0')
  local last = redis.call('HGET', LAST, account)
  if not last then return vnow end
  redis.call('HDEL', LAST, account)
  return math.max(vnow, tonumber(last))
end

-- The operations of this call: submit, started, released, beat, worker, withdraw, settings, forget.
-- An account that had nothing waiting or running gets its run released at once, beyond ahead: it
-- has the lowest virtual time, and its job's priority puts it before the released runs of others.
local newcomers = 0
local i = 5
while i <= #ARGV do
  local op = ARGV[i]
  if op == 'submit' then
    local runId, account, band, weight, cap, job = ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3]), ARGV[i + 4], ARGV[i + 5], ARGV[i + 6]
    i = i + 7
    redis.call('HSET', SETTINGS, account, weight .. ':' .. cap)
    forgetRelease(runId)
    if not redis.call('ZSCORE', ACCOUNTS, account) and not redis.call('HGET', CAPPED, account) and runningOf(account) == 0 then newcomers = newcomers + 1 end
    if redis.call('HEXISTS', WAITING, runId) == 0 then
      local seq = redis.call('INCR', SEQ)
      redis.call('ZADD', base .. 'pending:' .. account, band * 1e12 + seq, runId)
      redis.call('HSET', JOBS, runId, job)
      redis.call('HSET', WAITING, runId, account .. ':' .. now)
    end
    place(account, currentVt(account))
  elseif op == 'started' then
    local runId, account = ARGV[i + 1], ARGV[i + 2]
    i = i + 3
    startedAt(runId)
    forgetRelease(runId)
    redis.call('ZADD', base .. 'running:' .. account, now + lease, runId)
    redis.call('ZADD', BUSY, now + lease, runId)
  elseif op == 'beat' then
    local runId, account = ARGV[i + 1], ARGV[i + 2]
    i = i + 3
    redis.call('ZADD', base .. 'running:' .. account, now + lease, runId)
    redis.call('ZADD', BUSY, now + lease, runId)
  elseif op == 'worker' then
    local worker, slots = ARGV[i + 1], tonumber(ARGV[i + 2])
    i = i + 3
    if slots > 0 then redis.call('HSET', WORKERS, worker, slots .. ':' .. (now + WORKER_TTL_MS)) else redis.call('HDEL', WORKERS, worker) end
  elseif op == 'released' then
    local runId, account = ARGV[i + 1], ARGV[i + 2]
    i = i + 3
    redis.call('ZREM', base .. 'running:' .. account, runId)
    redis.call('ZREM', BUSY, runId)
    forgetRelease(runId)
    local vt = redis.call('HGET', CAPPED, account)
    if vt then place(account, tonumber(vt)) end
  elseif op == 'withdraw' then
    local runId = ARGV[i + 1]
    i = i + 2
    forgetRelease(runId)
    local waiting = redis.call('HGET', WAITING, runId)
    if waiting then
      local account = string.match(waiting, '^([^:]+):')
      redis.call('ZREM', base .. 'pending:' .. account, runId)
      redis.call('HDEL', JOBS, runId)
      redis.call('HDEL', WAITING, runId)
      place(account, currentVt(account))
    end
  elseif op == 'settings' then
    local account, weight, cap = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
    i = i + 4
    redis.call('HSET', SETTINGS, account, weight .. ':' .. cap)
    if redis.call('ZSCORE', ACCOUNTS, account) or redis.call('HGET', CAPPED, account) then place(account, currentVt(account)) end
  elseif op == 'forget' then
    -- An erased account: nothing of it stays (its runs were withdrawn first; any left are dropped with it).
    local account = ARGV[i + 1]
    i = i + 2
    local pending = base .. 'pending:' .. account
    for _, runId in ipairs(redis.call('ZRANGE', pending, 0, -1)) do
      redis.call('HDEL', JOBS, runId)
      redis.call('HDEL', WAITING, runId)
      forgetRelease(runId)
    end
    for _, runId in ipairs(redis.call('ZRANGE', base .. 'running:' .. account, 0, -1)) do
      redis.call('ZREM', BUSY, runId)
      forgetRelease(runId)
    end
    redis.call('DEL', pending, base .. 'running:' .. account)
    redis.call('ZREM', ACCOUNTS, account)
    redis.call('HDEL', CAPPED, account)
    redis.call('HDEL', SETTINGS, account)
    redis.call('HDEL', LAST, account)
  else
    return redis.error_reply('unknown flow operation ' .. tostring(op))
  end
end

-- A few accounts at their cap are looked at again: one whose runs' leases ran out (their worker
-- died and the runs were lost) is back in line without waiting for a run of its own to end.
local capped = redis.call('HRANDFIELD', CAPPED, 4, 'WITHVALUES')
for c = 1, #capped, 2 do place(capped[c], tonumber(capped[c + 1])) end

-- Release runs to the queues: enough for the fleet's free slots (the workers say how many they
-- have; the runs they run are busy), and ahead more, minus those released and not yet started.
local stuck = redis.call('ZRANGEBYSCORE', DISPATCHED, '-inf', now - dispatchStuckMs, 'LIMIT', 0, 100)
for _, runId in ipairs(stuck) do forgetRelease(runId) end
redis.call('ZREMRANGEBYSCORE', BUSY, '-inf', now)
local slots = 0
local workers = redis.call('HGETALL', WORKERS)
for w = 1, #workers, 2 do
  local count, expires = string.match(workers[w + 1], '^(%d+):(%d+)$')
  if tonumber(expires) > now then slots = slots + tonumber(count) else redis.call('HDEL', WORKERS, workers[w]) end
end
local free = math.max(0, slots - redis.call('ZCARD', BUSY))
local room = math.max(0, free + ahead - redis.call('ZCARD', DISPATCHED)) + newcomers
local out = {}
while room > 0 do
  local top = redis.call('ZRANGE', ACCOUNTS, 0, 0, 'WITHSCORES')
  if #top == 0 then break end
  local account, vt = top[1], tonumber(top[2])
  local pending = base .. 'pending:' .. account
  local first = redis.call('ZRANGE', pending, 0, 0)
  if #first == 0 then
    redis.call('ZREM', ACCOUNTS, account)
  else
    local runId = first[1]
    redis.call('ZREM', pending, runId)
    local job = redis.call('HGET', JOBS, runId)
    local waiting = redis.call('HGET', WAITING, runId) or ''
    redis.call('HDEL', JOBS, runId)
    redis.call('HDEL', WAITING, runId)
    local weight = settingsOf(account)
    if job then
      redis.call('ZADD', DISPATCHED, now, runId)
      redis.call('HSET', RELEASED_VT, runId, vt)
      redis.call('ZADD', base .. 'running:' .. account, now + lease, runId)
      local since = string.match(waiting, ':(%d+)$') or now
      table.insert(out, job)
      table.insert(out, tostring(since))
      table.insert(out, tostring(vt))
      room = room - 1
    end
    place(account, vt + 1000 / weight)
  end
end
return out
`;

const HOLDS_SCRIPT = `
if redis.call('HEXISTS', KEYS[1] .. 'waiting', ARGV[1]) == 1 then return 1 end
local released = redis.call('ZSCORE', KEYS[1] .. 'dispatched', ARGV[1])
if released and tonumber(released) > tonumber(ARGV[2]) then return 1 end
return 0
`;

const STATS_SCRIPT = `
return { redis.call('HLEN', KEYS[1] .. 'waiting'), redis.call('ZCARD', KEYS[1] .. 'accounts'), redis.call('HLEN', KEYS[1] .. 'capped'), redis.call('ZCARD', KEYS[1] .. 'dispatched') }
`;

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
    if (!('runyardFlow' in redis)) {
      redis.defineCommand('runyardFlow', { numberOfKeys: 1, lua: FLOW_SCRIPT });
      redis.defineCommand('runyardFlowHolds', { numberOfKeys: 1, lua: HOLDS_SCRIPT });
      redis.defineCommand('runyardFlowStats', { numberOfKeys: 1, lua: STATS_SCRIPT });
    }
    this.redis = redis as RedisClient & FlowCommands;
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
