-- oauth_lock_release: release an account's token-refresh lock, only if we still hold it.
-- KEYS[1] the lock key (its value is the holder's owner id)
-- ARGV[1] our owner id
-- Returns 1 when released, 0 when another owner holds it now (or it expired).

if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
