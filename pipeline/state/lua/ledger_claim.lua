-- ledger_claim: take the send lease of one event before its SMTP transaction.
-- KEYS[1] the event's ledger hash (state, token, at, reply, ambiguous)
-- KEYS[2] the event's status hash (its final `outcome`, once there is one)
-- ARGV[1] token: this attempt's unique id
-- ARGV[2] lease in seconds: how long another attempt's claim keeps this one out
-- ARGV[3] policy for an ambiguous leftover (`committing` past its lease): 'resend' or 'skip'
-- ARGV[4] ttl of the ledger hash in seconds
-- Returns {claim, extra}: {'final', outcome}, {'sent', reply json}, {'busy', seconds left},
-- {'claimed', ''}, {'claimed_ambiguous', ''} or {'ambiguous_skip', ''}.
-- `at` is the Redis server's time (server_time), never the worker's.

--#include server_time

local outcome = redis.call('HGET', KEYS[2], 'outcome')
if outcome then return {'final', outcome} end
local now = server_time()
local state = redis.call('HGET', KEYS[1], 'state')
local function claim(ambiguous)
  redis.call('HSET', KEYS[1], 'state', 'sending', 'token', ARGV[1], 'at', string.format('%.6f', now))
  if ambiguous then redis.call('HINCRBY', KEYS[1], 'ambiguous', 1) end
  redis.call('EXPIRE', KEYS[1], ARGV[4])
end
if not state or state == 'failed' then claim(false) return {'claimed', ''} end
if state == 'sent' then return {'sent', redis.call('HGET', KEYS[1], 'reply')} end
local age = now - tonumber(redis.call('HGET', KEYS[1], 'at') or '0')
if age < tonumber(ARGV[2]) then return {'busy', string.format('%.6f', tonumber(ARGV[2]) - age)} end
if state ~= 'committing' then claim(false) return {'claimed', ''} end
if ARGV[3] == 'skip' then
  redis.call('HSET', KEYS[1], 'state', 'sent', 'reply', '')
  redis.call('HINCRBY', KEYS[1], 'ambiguous', 1)
  return {'ambiguous_skip', ''}
end
claim(true)
return {'claimed_ambiguous', ''}
