-- status_transition: move an event to a new state; a final state is its outcome, set only once.
-- KEYS[1] the event hash
-- KEYS[2] the event's history list
-- KEYS[3] the tenant's events stream
-- KEYS[4] the tenant's pending zset (a final outcome takes the event out of it)
-- KEYS[5] the tenant's outcome counts hash
-- KEYS[6] the dedupe bucket of this period and the event's shard (a hash: event_id → 1)
-- ARGV[1] event_id
-- ARGV[2] tenant
-- ARGV[3] the new state
-- ARGV[4] '1' when the state is a final outcome, '0' otherwise
-- ARGV[5] now, seconds since the epoch
-- ARGV[6] the history entry, as JSON
-- ARGV[7] the stream's approximate maximum length
-- ARGV[8] how many history entries to keep
-- ARGV[9] seconds the hash and history live after the final outcome ([retention] hot; with a database,
--         a backstop the archiver shortens to hot once the event's final row is committed)
-- ARGV[10] when the dedupe bucket expires (the end of its period + [retention] dedupe_window), epoch seconds
-- ARGV[11] the oldest stream id to keep, in milliseconds (the stream is trimmed by age too; 0 with a
--          database: the archiver trims by age, never past what it has not archived)
-- ARGV[12] the event's field in the dedupe bucket (its event_id, or a digest of a long one); '' with a
--          database (no marker: the delivery log deduplicates beyond the hot window)
-- Returns 1 (applied), 0 (a second final outcome: ignored) or -1 (unknown event).
-- Later updates (a bounce after `sent`) keep the TTL the final outcome set. `created` and `final`
-- ride on each stream entry so the delivery log places the row without reading Redis again.

if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if ARGV[4] == '1' then
  if redis.call('HEXISTS', KEYS[1], 'outcome') == 1 then return 0 end
  redis.call('HSET', KEYS[1], 'outcome', ARGV[3])
  redis.call('ZREM', KEYS[4], ARGV[1])
  redis.call('HINCRBY', KEYS[5], ARGV[3], 1)
end
redis.call('HSET', KEYS[1], 'state', ARGV[3], 'updated', ARGV[5])
redis.call('RPUSH', KEYS[2], ARGV[6])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[8]), -1)
local created = redis.call('HGET', KEYS[1], 'created') or ARGV[5]
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[7], '*', 'event_id', ARGV[1], 'tenant', ARGV[2], 'state', ARGV[3], 'entry', ARGV[6], 'created', created, 'final', ARGV[4])
if ARGV[4] == '1' then
  redis.call('EXPIRE', KEYS[1], ARGV[9])
  redis.call('EXPIRE', KEYS[2], ARGV[9])
  if ARGV[12] ~= '' then
    redis.call('HSET', KEYS[6], ARGV[12], '1')
    redis.call('EXPIREAT', KEYS[6], ARGV[10])
  end
  redis.call('XTRIM', KEYS[3], 'MINID', '~', ARGV[11])
end
return 1
