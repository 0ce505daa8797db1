-- The fair scheduler: how many wait and run (shared/flow/fairQueue.ts).
return { redis.call('HLEN', KEYS[1] .. 'waiting'), redis.call('ZCARD', KEYS[1] .. 'accounts'), redis.call('HLEN', KEYS[1] .. 'capped'), redis.call('ZCARD', KEYS[1] .. 'dispatched') }
