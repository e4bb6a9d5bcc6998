-- inbox_lease_hold: take a mailbox's watcher lease if it is free, or renew it if we hold it.
-- KEYS[1] the mailbox's lease key (its value is the holder's owner id)
-- ARGV[1] our owner id
-- ARGV[2] lease in milliseconds
-- Returns 1 when we hold the lease for ARGV[2] ms from now, 0 when another owner holds it.

if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
