"""Per-account send-rate limiter shared through Redis (ARCHITECTURE §6).

GCRA with reservation: one atomic script hands a batch of messages their own future send
slots, spaced by the account's interval, so workers never sleep and never burst at window
edges. The caller re-enqueues each message with its slot's delay.
"""

from __future__ import annotations

import random

import redis

from . import keys
from .config import ResolvedAccount

# KEYS[1] theoretical arrival time; KEYS[2] account state hash (rate_factor from back-off)
# ARGV: now, interval seconds, count
_RESERVE = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local factor = tonumber(redis.call('HGET', KEYS[2], 'rate_factor') or '1')
if factor <= 0 then factor = 1 end
interval = interval / factor
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local out = {}
for i = 1, tonumber(ARGV[3]) do
  out[i] = tostring(tat - now)
  tat = tat + interval
end
redis.call('SET', KEYS[1], tostring(tat), 'PX', math.ceil((tat - now) * 1000) + 60000)
return out
"""

SEND_NOW_SECONDS = 0.010


class RateLimiter:
    def __init__(self, client: redis.Redis, *, jitter_ms: int = 0, tenant: str = "default") -> None:
        self.client = client
        self.jitter = jitter_ms / 1000.0
        self.tenant = tenant
        self._reserve = client.register_script(_RESERVE)

    def reserve(self, account: ResolvedAccount, count: int, now: float) -> list[float]:
        """Delays (seconds from now) for `count` messages on this account, in order."""
        per_second = account.limits.per_second
        if not per_second or count == 0:
            return [0.0] * count
        raw = self._reserve(
            keys=[keys.rate_tat(self.tenant, account.name), keys.account_state(self.tenant, account.name)],
            args=[now, 1.0 / per_second, count],
        )
        delays = [max(0.0, float(d)) for d in raw]
        if self.jitter:
            delays = [d + random.uniform(0, self.jitter) if d > SEND_NOW_SECONDS else d for d in delays]
        return delays
