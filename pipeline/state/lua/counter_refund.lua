-- counter_refund: give back counts taken by send_gate_take when the server did not accept the message.
-- KEYS[1..] the window counters to decrement (never below zero)
-- ARGV: none
-- Returns the number of counters given.

for i = 1, #KEYS do
  if tonumber(redis.call('GET', KEYS[i]) or '0') > 0 then redis.call('DECR', KEYS[i]) end
end
return #KEYS
