"""Adaptive back-off when a provider says slow down: multiplicative decrease of the account's rate."""

from __future__ import annotations

import time

from . import keys
from .context import StageContext

MIN_FACTOR = 0.05
DECREASE = 0.5
DEFAULT_WAIT = 1.0


def record_throttle(ctx: StageContext, account: str, retry_after: float | None, *, quota: bool = False) -> float:
    """Halve the account's effective rate and return how long this message should wait."""
    key = keys.account_state("default", account)
    pipe = ctx.redis.pipeline(transaction=False)
    pipe.hget(key, "rate_factor")
    pipe.hincrby(key, "throttles", 1)
    factor = float(pipe.execute()[0] or 1.0)
    ctx.redis.hset(key, mapping={"rate_factor": max(MIN_FACTOR, factor * DECREASE), "last_throttle": time.time()})
    return max(retry_after or 0.0, DEFAULT_WAIT if not quota else 60.0)
