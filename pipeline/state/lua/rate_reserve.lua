-- rate_reserve: hand each message of a batch its own future send slot (GCRA over several scopes).
-- KEYS[1..] one reservation tat per scope (nscopes keys), then one account state hash per
--           account scope (addressed by the scope's state index)
-- ARGV[1] now, seconds since the epoch
-- ARGV[2] horizon: slots further ahead are not reserved
-- ARGV[3] quantum: unreserved delays are rounded down to a multiple of it
-- ARGV[4] nscopes
-- ARGV[5..] per scope: interval (seconds), state index (1-based among the state hashes; 0: not
--           an account, no back-off); then nmessages; per message: extra gap (jitter), its
--           number of scopes, and their 1-based scope indices
-- Returns one string per message: the delay from now ('%.6f') when reserved, or 'w' followed by
-- the delay after which to ask again when the slot lies beyond the horizon.

--#include backoff_factor

local now = tonumber(ARGV[1])
local horizon = tonumber(ARGV[2])
local quantum = tonumber(ARGV[3])
local n = tonumber(ARGV[4])
local interval, tat, vt = {}, {}, {}
local a = 5
for s = 1, n do
  local base = tonumber(ARGV[a])
  local si = tonumber(ARGV[a + 1])
  a = a + 2
  if si > 0 then base = base / backoff_factor(KEYS[n + si], now) end
  interval[s] = base
  local t = tonumber(redis.call('GET', KEYS[s]) or '0') or 0
  if t < now then t = now end
  tat[s] = t
  vt[s] = t
end
local m = tonumber(ARGV[a])
a = a + 1
local out = {}
for i = 1, m do
  local gap = tonumber(ARGV[a])
  local c = tonumber(ARGV[a + 1])
  a = a + 2
  local idx = {}
  local slot = now
  for j = 1, c do
    idx[j] = tonumber(ARGV[a])
    a = a + 1
    if vt[idx[j]] > slot then slot = vt[idx[j]] end
  end
  local reserved = slot - now <= horizon
  for j = 1, c do
    local s = idx[j]
    vt[s] = slot + interval[s] + gap
    if reserved then tat[s] = vt[s] end
  end
  if reserved then
    out[i] = string.format('%.6f', slot - now)
  else
    out[i] = 'w' .. string.format('%.6f', math.floor((slot - now - horizon / 2) / quantum) * quantum)
  end
end
for s = 1, n do
  if tat[s] > now then
    redis.call('SET', KEYS[s], string.format('%.6f', tat[s]), 'PX', math.ceil((tat[s] - now) * 1000) + 60000)
  end
end
return out
