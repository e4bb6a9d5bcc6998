-- ledger_commit: just before DATA, the current holder marks the send as committing (and renews
-- its lease for the DATA phase). An attempt that lost its claim gets 0 and must not send the text.
-- KEYS[1] the event's ledger hash
-- ARGV[1] token of the attempt that claimed it
-- Returns 1 (committed) or 0 (not the holder, or no longer before DATA).

--#include server_time

if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[1], 'state') ~= 'sending' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'committing', 'at', string.format('%.6f', server_time()))
return 1
