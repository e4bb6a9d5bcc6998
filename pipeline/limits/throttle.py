"""Adaptive back-off when a provider says slow down (docs/architecture.md: "Rate limits").

A throttle signal cuts the account's `rate_factor` multiplicatively (at most once per
DECREASE_COOLDOWN, so a burst of 454s for mail already in flight counts once). Recovery is
additive and lazy: every RECOVERY_QUIET seconds without a throttle adds RECOVERY_STEP of the
configured rate back, computed from `last_throttle` inside the limiter's Lua scripts (the
`backoff_factor` fragment, see backoff.py) — no background task.
"""

from __future__ import annotations

import time
import uuid

import redis

from pipeline.limits import backoff
from pipeline.observe import metrics
from pipeline.state import keys, lua_scripts

DECREASE = 0.5
DECREASE_COOLDOWN = 2.0
DEFAULT_WAIT = 1.0
MAX_RETRY_AFTER = 3600.0
THROTTLE_LOG_SECONDS = 3600.0

_RECORD = lua_scripts.load(
    "throttle_record",
    DECREASE=DECREASE,
    DECREASE_COOLDOWN=DECREASE_COOLDOWN,
    THROTTLE_LOG_SECONDS=THROTTLE_LOG_SECONDS,
    THROTTLE_LOG_TTL=int(THROTTLE_LOG_SECONDS) + 60,
    **backoff.LUA_CONSTANTS,
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
    call = _RECORD.bind(
        keys=[
            keys.account_state("default", account),
            throttle_log_key("default", account),
            keys.rate_tat("default", account_scope(account)),
        ],
        args=[now, hint, f"{now:.6f}:{uuid.uuid4().hex[:8]}", exhausted_until],
    )
    lua_scripts.run(client, call)
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
