-- ledger_complete: record the server's reply for the attempt that holds the claim.
-- KEYS[1] the event's ledger hash
-- ARGV[1] token of the attempt that claimed it
-- ARGV[2] the new state: 'sent' (accepted) or 'failed'
-- ARGV[3] the reply, as JSON
-- ARGV[4] ttl of the ledger hash in seconds
-- Returns 1, or 0 when another attempt holds the claim now (nothing written).

if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'reply', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
