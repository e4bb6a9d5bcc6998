-- queue_depths: the depth of each Dramatiq stage queue, read in one round trip.
-- KEYS: none (the queue keys are built from the namespace below)
-- ARGV[1] the broker namespace
-- ARGV[2..] queue names
-- Returns per queue {ready, held, delayed, dead, head message timestamp ms, head eta ms}
-- (-1 when unknown). The head's timestamps are matched here so a 100-email payload never
-- leaves Redis.

local ns = ARGV[1]
local out = {}
for i = 2, #ARGV do
  local q = ns .. ':' .. ARGV[i]
  local ts, eta = '-1', '-1'
  local head = redis.call('LINDEX', q, 0)
  if head then
    local data = redis.call('HGET', q .. '.msgs', head)
    if data then
      for v in string.gmatch(data, '"message_timestamp":(%d+)') do ts = v end
      for v in string.gmatch(data, '"eta":(%d+)') do eta = v end
    end
  end
  out[#out + 1] = {redis.call('LLEN', q), redis.call('HLEN', q .. '.msgs'), redis.call('HLEN', q .. '.DQ.msgs'),
                   redis.call('ZCARD', q .. '.XQ'), ts, eta}
end
return out
