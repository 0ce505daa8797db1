-- The fair scheduler: the runs each account holds (shared/flow/fairQueue.ts).
if redis.call('HEXISTS', KEYS[1] .. 'waiting', ARGV[1]) == 1 then return 1 end
local released = redis.call('ZSCORE', KEYS[1] .. 'dispatched', ARGV[1])
if released and tonumber(released) > tonumber(ARGV[2]) then return 1 end
return 0
