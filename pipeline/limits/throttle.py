"""Adaptive back-off when a provider says slow down (ARCHITECTURE §6).

A throttle signal cuts the account's `rate_factor` multiplicatively (at most once per
DECREASE_COOLDOWN, so a burst of 454s for mail already in flight counts once). Recovery is
additive and lazy: every RECOVERY_QUIET seconds without a throttle adds RECOVERY_STEP of the
configured rate back, computed from `last_throttle` inside the limiter's Lua scripts (the same
FACTOR_LUA snippet) — no background task.
"""

from __future__ import annotations

import time
import uuid

import redis

from pipeline.limits.backoff import FACTOR_LUA, MIN_FACTOR
from pipeline.observe import metrics
from pipeline.state import keys

DECREASE = 0.5
DECREASE_COOLDOWN = 2.0
DEFAULT_WAIT = 1.0
MAX_RETRY_AFTER = 3600.0
THROTTLE_LOG_SECONDS = 3600.0

# KEYS[1] account state hash, KEYS[2] throttle log (zset), KEYS[3] reservation tat
# ARGV: now, retry_after (0 = none), member, exhausted_until (0 = not a quota signal)
_RECORD = (
    "local now = tonumber(ARGV[1])\nlocal state = KEYS[1]\n"
    + FACTOR_LUA
    + f"""
local last_decrease = tonumber(redis.call('HGET', state, 'last_decrease') or '0') or 0
local decreased = 0
if now - last_decrease >= {DECREASE_COOLDOWN} then
  factor = math.max({MIN_FACTOR}, factor * {DECREASE})
  decreased = 1
  redis.call('HSET', state, 'last_decrease', string.format('%.6f', now))
end
redis.call('HSET', state, 'rate_factor', string.format('%.6f', factor), 'last_throttle', string.format('%.6f', now))
redis.call('HINCRBY', state, 'throttles', 1)
redis.call('ZADD', KEYS[2], now, ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - {THROTTLE_LOG_SECONDS})
redis.call('EXPIRE', KEYS[2], {int(THROTTLE_LOG_SECONDS) + 60})
local retry_after = tonumber(ARGV[2])
if retry_after > 0 then
  local tat = tonumber(redis.call('GET', KEYS[3]) or '0') or 0
  if tat < now + retry_after then
    redis.call('SET', KEYS[3], string.format('%.6f', now + retry_after), 'PX', math.ceil(retry_after * 1000) + 60000)
  end
end
local exhausted = tonumber(ARGV[4])
if exhausted > 0 then redis.call('HSET', state, 'exhausted_until', string.format('%.6f', exhausted)) end
return {{decreased, string.format('%.6f', factor)}}
"""
)


def account_scope(account: str) -> str:
    return f"account:{account}"


def throttle_log_key(tenant: str, account: str) -> str:
    return keys.window_count(tenant, account_scope(account), "throttles", "log")


def record_throttle(
    client: redis.Redis, account: str, retry_after: float | None, *, now: float, timezone: str, quota: bool = False
) -> float:
    """Back the account off and return how long this message should wait before rate_limit again.

    A quota signal (the provider's daily quota is used up) also marks the account exhausted until
    the next midnight in `rate_limit.timezone`, so route moves its mail to another account.
    """
    from pipeline.limits.quota import Window, next_reset

    hint = min(max(retry_after or 0.0, 0.0), MAX_RETRY_AFTER)
    exhausted_until = next_reset(Window.DAY, now, timezone) if quota else 0.0
    script = client.register_script(_RECORD)
    script(
        keys=[
            keys.account_state("default", account),
            throttle_log_key("default", account),
            keys.rate_tat("default", account_scope(account)),
        ],
        args=[now, hint, f"{now:.6f}:{uuid.uuid4().hex[:8]}", exhausted_until],
    )
    metrics.throttled(account)
    return max(hint, DEFAULT_WAIT)


def throttles_last_hour(
    client: redis.Redis, accounts: list[str], now: float | None = None, tenant: str = "default"
) -> dict[str, int]:
    """Throttle signals per account in the last hour (for `accounts status` and metrics)."""
    now = time.time() if now is None else now
    pipe = client.pipeline(transaction=False)
    for account in accounts:
        pipe.zcount(throttle_log_key(tenant, account), now - THROTTLE_LOG_SECONDS, "+inf")
    return {a: int(n) for a, n in zip(accounts, pipe.execute(), strict=True)}
