-- send_gate_take: check every limit of one message right before its SMTP transaction, and take
-- them all together only if every one has room (the account is up, each scope's per-second log
-- and spacing allow it, each capped minute/hour/day counter is below its cap).
-- KEYS[1] the account state hash
-- KEYS[2..] per scope: its per-second log (zset), its spacing tat, then its window counters
-- ARGV[1] now, seconds since the epoch ('' = the Redis server's clock, shared by every host)
-- ARGV[2] a unique member for the per-second logs
-- ARGV[3] nscopes
-- ARGV[4..] per scope: per_second (0: none), use_factor ('1' for the account scope: the rate is
--           scaled by the back-off factor), ncounters; per counter: cap (-1: counted, no cap),
--           ttl in seconds
-- Returns {verdict, until ('%.6f' or '0'), scope index, counter index}; verdict is one of
-- ok, paused, unhealthy, exhausted, early (a per-second log or the spacing is full), cap.

--#include backoff_factor
--#include server_time

local now = tonumber(ARGV[1]) or server_time()
local state = KEYS[1]
local st = redis.call('HMGET', state, 'paused', 'health', 'exhausted_until')
if st[1] == '1' then return {'paused', '0', '0', '0'} end
if st[2] and st[2] ~= 'up' then return {'unhealthy', '0', '0', '0'} end
local exhausted = tonumber(st[3] or '0') or 0
if exhausted > now then return {'exhausted', st[3], '0', '0'} end
local factor = backoff_factor(state, now)
local BURST = ${SEND_BURST}
local a, k = 4, 2
local plan = {}
for s = 1, tonumber(ARGV[3]) do
  local rate = tonumber(ARGV[a])
  local use_factor = ARGV[a + 1] == '1'
  local ncounters = tonumber(ARGV[a + 2])
  a = a + 3
  local log, spacing = KEYS[k], KEYS[k + 1]
  k = k + 2
  if rate > 0 then
    if use_factor then rate = rate * factor end
    local window, limit = 1, math.floor(rate + 1e-9)
    if rate < 1 then window = 1 / rate; limit = 1 end
    redis.call('ZREMRANGEBYSCORE', log, '-inf', now - window)
    if redis.call('ZCARD', log) >= limit then
      local oldest = redis.call('ZRANGE', log, 0, 0, 'WITHSCORES')
      return {'early', string.format('%.6f', tonumber(oldest[2]) + window), tostring(s), '0'}
    end
    local interval = 1 / rate
    local tat = tonumber(redis.call('GET', spacing) or '0') or 0
    if tat < now then tat = now end
    if tat - now > BURST * interval then
      return {'early', string.format('%.6f', tat - BURST * interval), tostring(s), '0'}
    end
    plan[#plan + 1] = {'log', log, window}
    plan[#plan + 1] = {'spacing', spacing, tat + interval}
  end
  for c = 1, ncounters do
    local cap = tonumber(ARGV[a])
    local ttl = ARGV[a + 1]
    a = a + 2
    local key = KEYS[k]
    k = k + 1
    if cap >= 0 and tonumber(redis.call('GET', key) or '0') >= cap then
      return {'cap', '0', tostring(s), tostring(c)}
    end
    plan[#plan + 1] = {'count', key, ttl}
  end
end
for _, p in ipairs(plan) do
  if p[1] == 'log' then
    redis.call('ZADD', p[2], now, ARGV[2])
    redis.call('PEXPIRE', p[2], math.ceil(p[3] * 1000) + 1000)
  elseif p[1] == 'spacing' then
    redis.call('SET', p[2], string.format('%.6f', p[3]), 'PX', math.ceil((p[3] - now) * 1000) + 1000)
  else
    redis.call('INCR', p[2])
    redis.call('EXPIRE', p[2], p[3])
  end
end
return {'ok', '0', '0', '0'}
