-- sweeper_claim_stalled: take one stalled event for a re-drive, and push its next due time back.
-- KEYS[1] the tenant's pending zset
-- KEYS[2] the event hash
-- KEYS[3] the tenant's outcome counts hash
-- ARGV[1] event_id
-- ARGV[2] cutoff: the event is stalled when its score is at or before it
-- ARGV[3] now, seconds since the epoch
-- ARGV[4] stalled_after, seconds
-- Returns the event JSON to re-drive, or false (not stalled any more, final, or unknown).
-- The n-th re-drive of one event waits stalled_after * 2^(n-1) (capped at 64 times) before the
-- next: on an overloaded pipeline re-drives must not pile up faster than the copies can move.

local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[2]) then return false end
local event = redis.call('HGET', KEYS[2], 'event')
if not event or redis.call('HEXISTS', KEYS[2], 'outcome') == 1 then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return false
end
local n = redis.call('HINCRBY', KEYS[2], 'redriven', 1)
local wait = tonumber(ARGV[4]) * (math.min(2 ^ (n - 1), 64) - 1)
redis.call('ZADD', KEYS[1], tonumber(ARGV[3]) + wait, ARGV[1])
redis.call('HINCRBY', KEYS[3], 'redriven', 1)
return event
