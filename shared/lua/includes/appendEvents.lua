-- Appends ARGV[from..] to a run's stream (each as field `e`, the stream capped near maxLen), keeps
-- it ttlMs longer, tells readers on its channel (PUBLISH, or SPUBLISH on a cluster): the last id.
local function appendEvents(stream, channel, maxLen, ttlMs, publish, from)
  local last
  for i = from, #ARGV do
    last = redis.call('XADD', stream, 'MAXLEN', '~', maxLen, '*', 'e', ARGV[i])
  end
  redis.call('PEXPIRE', stream, ttlMs)
  redis.call(publish, channel, last)
  return last
end
