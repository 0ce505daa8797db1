-- A model call reserved in its rule's window, or how long until one fits (shared/flow/modelRateLimits.ts).
local now, window, rpm, tpm, tokens, member = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local calls = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local count = #calls / 2
if rpm > 0 and count >= rpm then
  return { math.max(1, tonumber(calls[(count - rpm) * 2 + 2]) + window - now), 'rpm' }
end
if tpm > 0 and count > 0 then
  local used = 0
  for i = 1, #calls, 2 do used = used + tonumber(string.match(calls[i], ':(%d+)$')) end
  if used + tokens > tpm then
    for i = 1, #calls, 2 do
      used = used - tonumber(string.match(calls[i], ':(%d+)$'))
      if used + tokens <= tpm then return { math.max(1, tonumber(calls[i + 1]) + window - now), 'tpm' } end
    end
    return { math.max(1, tonumber(calls[#calls]) + window - now), 'tpm' }
  end
end
redis.call('ZADD', KEYS[1], now, member)
redis.call('PEXPIRE', KEYS[1], window)
return { 0, '' }
