-- Appends a run's events while the fence names this attempt (shared/stream/events.ts, RunEventWriter).
--@include appendEvents
local current = redis.call('GET', KEYS[2])
if ARGV[5] == '1' then
  if current and tonumber(current) > tonumber(ARGV[1]) then return false end
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[3])
elseif current ~= ARGV[1] then
  return false
end
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return appendEvents(KEYS[1], KEYS[3], ARGV[2], ARGV[3], ARGV[4], 6)
