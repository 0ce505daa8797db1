-- Renews a stream's lease (api/streams/streamLeases.ts).
if redis.call('ZADD', KEYS[1], 'XX', 'CH', ARGV[1], ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return 1
