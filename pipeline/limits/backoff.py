"""The back-off factor an account's rate is multiplied by after throttle signals.

One rule in two languages: `FACTOR_LUA` runs inside the limiter's and the quota gate's scripts,
`effective_factor` computes the same for status and metrics (a property test holds them equal).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

MIN_FACTOR = 0.05
RECOVERY_STEP = 0.1
RECOVERY_QUIET = 30.0

# Lua: expects `now` and `state` (an account state hash key) to be defined; sets `factor`.
FACTOR_LUA = f"""
local factor = 1
do
  local stored = redis.call('HMGET', state, 'rate_factor', 'last_throttle')
  factor = tonumber(stored[1] or '1') or 1
  if factor <= 0 then factor = 1 end
  local last = tonumber(stored[2] or '')
  if last and factor < 1 then
    local steps = math.floor((now - last) / {RECOVERY_QUIET})
    if steps > 0 then factor = math.min(1, factor + steps * {RECOVERY_STEP}) end
  end
  if factor < {MIN_FACTOR} then factor = {MIN_FACTOR} end
end
"""


def effective_factor(state: Mapping[str, str], now: float) -> float:
    """Python mirror of FACTOR_LUA, for status and metrics."""
    try:
        factor = float(state.get("rate_factor") or 1.0)
    except ValueError:
        factor = 1.0
    if factor <= 0:
        factor = 1.0
    last = state.get("last_throttle")
    if last and factor < 1:
        steps = math.floor((now - float(last)) / RECOVERY_QUIET)
        if steps > 0:
            factor = min(1.0, factor + steps * RECOVERY_STEP)
    return max(MIN_FACTOR, factor)
