-- Fragment backoff_factor: the back-off factor an account's configured rate is multiplied by.
-- Included by rate_reserve, send_gate_take and throttle_record (`--#include backoff_factor`).
--
-- Defines: local function backoff_factor(state, now) -> number in [${MIN_FACTOR}, 1]
--   state  the account state hash key (it must be among the including script's KEYS)
--   now    the current time, seconds since the epoch
-- Reads the fields `rate_factor` (the factor the last throttle left) and `last_throttle` (when);
-- writes nothing. Every ${RECOVERY_QUIET} s without a throttle since `last_throttle` gives back
-- ${RECOVERY_STEP} of the configured rate, lazily, here. pipeline.limits.backoff.effective_factor
-- is the same rule in Python; tests/state/test_backoff_agreement.py holds the two equal.
-- Constants: MIN_FACTOR, RECOVERY_STEP, RECOVERY_QUIET (backoff.LUA_CONSTANTS).

local function backoff_factor(state, now)
  local stored = redis.call('HMGET', state, 'rate_factor', 'last_throttle')
  local factor = tonumber(stored[1] or '1') or 1
  if factor <= 0 then factor = 1 end
  local last = tonumber(stored[2] or '')
  if last and factor < 1 then
    local steps = math.floor((now - last) / ${RECOVERY_QUIET})
    if steps > 0 then factor = math.min(1, factor + steps * ${RECOVERY_STEP}) end
  end
  if factor < ${MIN_FACTOR} then factor = ${MIN_FACTOR} end
  return factor
end
