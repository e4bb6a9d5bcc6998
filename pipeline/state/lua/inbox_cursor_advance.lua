-- inbox_cursor_advance: move a watched folder's cursor forward, only within the same UIDVALIDITY.
-- KEYS[1] the folder's cursor hash (uidvalidity, last_uid, updated)
-- ARGV[1] the UIDVALIDITY the handled message was read under
-- ARGV[2] its UID
-- ARGV[3] now, seconds since the epoch
-- Returns 1, or 0 when the folder's UIDVALIDITY changed meanwhile (nothing written).

if redis.call('HGET', KEYS[1], 'uidvalidity') ~= ARGV[1] then return 0 end
local last = tonumber(redis.call('HGET', KEYS[1], 'last_uid') or '0')
if tonumber(ARGV[2]) > last then redis.call('HSET', KEYS[1], 'last_uid', ARGV[2], 'updated', ARGV[3]) end
return 1
