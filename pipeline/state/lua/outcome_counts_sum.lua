-- outcome_counts_sum: the sum of some fields over many outcome-count hashes, added up inside Redis.
-- KEYS[1..] the tenants' outcome counts hashes
-- ARGV[1..] the fields to add up (the final outcomes)
-- Returns the total (an integer).

local total = 0
for _, key in ipairs(KEYS) do
  for _, value in ipairs(redis.call('HMGET', key, unpack(ARGV))) do
    if value then total = total + tonumber(value) end
  end
end
return total
