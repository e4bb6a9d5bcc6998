-- account_usage_read: every account's state hash and window counters, read in one call.
-- KEYS[1..] per account: its state hash, then its window counters (ARGV says how many)
-- ARGV[1..] per account, in the same order: the number of counter keys after its state hash
-- Returns per account {state as field, value, field, value…; then each counter's value or false}.
-- One script instead of a pipeline of HGETALL + GET per account: a stage batch spanning many
-- tenants reads hundreds of accounts, and each command of a pipeline costs the client far more
-- than a key of a script.

local out = {}
local k = 1
for i = 1, #ARGV do
  local row = redis.call('HGETALL', KEYS[k])
  k = k + 1
  for _ = 1, tonumber(ARGV[i]) do
    row[#row + 1] = redis.call('GET', KEYS[k])
    k = k + 1
  end
  out[i] = row
end
return out
