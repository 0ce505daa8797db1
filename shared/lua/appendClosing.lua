-- Ends a run's stream with the given events, the last of them [DONE], unless it already ends so (shared/stream/events.ts).
--@include appendEvents
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
if last and last[2][2] == ARGV[#ARGV] then return false end
return appendEvents(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], 4)
