-- Fragment server_time: the Redis server's clock, the one clock every worker host shares.
--
-- Defines: local function server_time() -> seconds since the epoch (microsecond precision)
-- Leases are decided with it, never with a time a worker passes in: a worker whose own clock is
-- skewed can then neither take over a lease that is still running nor hold one past its end.
-- Redis 5+ replicates a script's effects, not the script, so reading TIME in a script that
-- writes is deterministic on replicas.

local function server_time()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
