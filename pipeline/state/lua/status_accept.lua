-- status_accept: record one submitted event as accepted, unless its event_id is already known.
-- KEYS[1] the event hash
-- KEYS[2] the event's history list
-- KEYS[3] the tenant's events stream
-- KEYS[4] the tenant's pending zset (the sweeper's: event_id → when it is next due to move)
-- KEYS[5] the tenant's outcome counts hash
-- KEYS[6] the event's marker of the first design (one key per event; read only until those expire)
-- KEYS[7] the prefix of the tenant's dedupe buckets (<prefix><bucket>:<shard> hashes, event_id → 1)
-- KEYS[8] the flag a deployment with a database sets (its dedupe beyond the hot window is PostgreSQL's)
-- ARGV[1] event_id
-- ARGV[2] tenant
-- ARGV[3] the event, as JSON (kept so a stalled event can be re-driven)
-- ARGV[4] now, seconds since the epoch
-- ARGV[5] the history entry, as JSON
-- ARGV[6] when the event is next due to move (its send_at, or now)
-- ARGV[7] the stream's approximate maximum length
-- ARGV[8] the event's field in a dedupe bucket (its event_id, or a digest of a long one)
-- ARGV[9] the event's shard
-- ARGV[10] the oldest bucket still inside [retention] dedupe_window
-- ARGV[11] the current bucket
-- ARGV[12] 'redis' (markers in Redis: probe the buckets; refuse if KEYS[8] is set) or 'database'
--          (the caller already asked the delivery log: only the hot hash decides here)
-- Returns 1 (accepted) or 0 (a duplicate: nothing written).

if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[6]) == 1 then return 0 end
if ARGV[12] == 'redis' then
  if redis.call('EXISTS', KEYS[8]) == 1 then
    return redis.error_reply('MAILPIPE_DEDUPE_IN_DATABASE this deployment deduplicates through its database')
  end
  for bucket = tonumber(ARGV[11]), tonumber(ARGV[10]), -1 do
    if redis.call('HEXISTS', KEYS[7] .. bucket .. ':' .. ARGV[9], ARGV[8]) == 1 then return 0 end
  end
end
redis.call('HSET', KEYS[1], 'state', 'accepted', 'created', ARGV[4], 'updated', ARGV[4], 'event', ARGV[3])
redis.call('RPUSH', KEYS[2], ARGV[5])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[7], '*', 'event_id', ARGV[1], 'tenant', ARGV[2], 'state', 'accepted', 'entry', ARGV[5])
redis.call('ZADD', KEYS[4], ARGV[6], ARGV[1])
redis.call('HINCRBY', KEYS[5], 'accepted', 1)
return 1
