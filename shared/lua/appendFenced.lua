-- Appends a run's events while the fence names this attempt (shared/stream/events.ts, RunEventWriter).
local current = redis.call('GET', KEYS[2])
if ARGV[5] == '1' then
  if current and tonumber(current) > tonumber(ARGV[1]) then return false end
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[3])
elseif current ~= ARGV[1] then
  return false
end
local last
for i = 6, #ARGV do
  last = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'e', ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call(ARGV[4], KEYS[3], last)
return last
