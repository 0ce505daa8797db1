-- The fair scheduler: applies a batch of operations, then releases what may start (shared/flow/fairQueue.ts).
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
