-- Counts a failed authentication of an address in its minute (api/http/middleware/authFailures.ts).
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count >= tonumber(ARGV[2]) then return { count, redis.call('PTTL', KEYS[1]), 1 } end
count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return { count, redis.call('PTTL', KEYS[1]), 0 }
