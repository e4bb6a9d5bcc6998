-- inbox_lease_release: give a mailbox's watcher lease up, only if we still hold it.
-- KEYS[1] the mailbox's lease key
-- ARGV[1] our owner id
-- Returns 1 when released, 0 when another owner held it (nothing written).

if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
