-- throttle_record: a provider said slow down; cut the account's back-off factor and log the signal.
-- KEYS[1] the account state hash
-- KEYS[2] the account's throttle log (zset: member → when)
-- KEYS[3] the account's reservation tat (rate_reserve's scope key)
-- ARGV[1] now, seconds since the epoch
-- ARGV[2] the provider's retry-after in seconds (0: none)
-- ARGV[3] a unique member for the throttle log
-- ARGV[4] exhausted until (seconds since the epoch; 0: not a quota signal)
-- Returns {decreased (1 when the factor was cut, 0 inside the cooldown), the factor now ('%.6f')}.

--#include backoff_factor

local now = tonumber(ARGV[1])
local state = KEYS[1]
local factor = backoff_factor(state, now)
local last_decrease = tonumber(redis.call('HGET', state, 'last_decrease') or '0') or 0
local decreased = 0
if now - last_decrease >= ${DECREASE_COOLDOWN} then
  factor = math.max(${MIN_FACTOR}, factor * ${DECREASE})
  decreased = 1
  redis.call('HSET', state, 'last_decrease', string.format('%.6f', now))
end
redis.call('HSET', state, 'rate_factor', string.format('%.6f', factor), 'last_throttle', string.format('%.6f', now))
redis.call('HINCRBY', state, 'throttles', 1)
redis.call('ZADD', KEYS[2], now, ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - ${THROTTLE_LOG_SECONDS})
redis.call('EXPIRE', KEYS[2], ${THROTTLE_LOG_TTL})
local retry_after = tonumber(ARGV[2])
if retry_after > 0 then
  local tat = tonumber(redis.call('GET', KEYS[3]) or '0') or 0
  if tat < now + retry_after then
    redis.call('SET', KEYS[3], string.format('%.6f', now + retry_after), 'PX', math.ceil(retry_after * 1000) + 60000)
  end
end
local exhausted = tonumber(ARGV[4])
if exhausted > 0 then redis.call('HSET', state, 'exhausted_until', string.format('%.6f', exhausted)) end
return {decreased, string.format('%.6f', factor)}
