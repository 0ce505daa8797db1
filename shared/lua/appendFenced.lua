-- Appends a run's events while the fence names this attempt (shared/stream/events.ts, RunEventWriter).
-- First, whatever the fence says, the run's model call note (KEYS[4], worker/attempt/modelCallLedger.ts)
-- changes as ARGV[6] says: '' unchanged, '-' forgotten, else set to it for ARGV[7] ms. Events from ARGV[8].
--@include appendEvents
if ARGV[6] == '-' then
  redis.call('DEL', KEYS[4])
elseif ARGV[6] ~= '' then
  redis.call('SET', KEYS[4], ARGV[6], 'PX', ARGV[7])
end
local current = redis.call('GET', KEYS[2])
if ARGV[5] == '1' then
  if current and tonumber(current) > tonumber(ARGV[1]) then return false end
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[3])
elseif current ~= ARGV[1] then
  return false
end
redis.call('PEXPIRE', KEYS[2], ARGV[3])
if #ARGV < 8 then return '' end
return appendEvents(KEYS[1], KEYS[3], ARGV[2], ARGV[3], ARGV[4], 8)
