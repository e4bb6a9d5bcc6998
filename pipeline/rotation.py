"""Pick an account from a route's pool: least_used_today, round_robin or weighted."""

from __future__ import annotations

import random
from datetime import datetime
from zoneinfo import ZoneInfo

import redis

from . import keys
from .config import RouteConfig, Strategy


def day_bucket(now: float, timezone: str) -> str:
    return datetime.fromtimestamp(now, ZoneInfo(timezone)).strftime("%Y%m%d")


def sent_today(client: redis.Redis, accounts: list[str], now: float, timezone: str, tenant: str = "default") -> dict[str, int]:
    bucket = day_bucket(now, timezone)
    values = client.mget([keys.window_count(tenant, a, "day", bucket) for a in accounts]) if accounts else []
    return {a: int(v or 0) for a, v in zip(accounts, values, strict=True)}


def choose(
    client: redis.Redis,
    route: RouteConfig | None,
    candidates: list[str],
    *,
    weights: dict[str, int],
    now: float,
    timezone: str,
) -> str:
    if len(candidates) == 1:
        return candidates[0]
    strategy = route.strategy if route else Strategy.LEAST_USED_TODAY
    if strategy == Strategy.ROUND_ROBIN:
        turn = int(client.incr(keys.rotation("default", route.label if route else "default")))
        return candidates[turn % len(candidates)]
    if strategy == Strategy.WEIGHTED:
        return random.choices(candidates, weights=[weights.get(c, 1) for c in candidates])[0]
    counts = sent_today(client, candidates, now, timezone)
    low = min(counts.values())
    return random.choice([c for c in candidates if counts[c] == low])
