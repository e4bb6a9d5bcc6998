"""Pick an account from a route's pool: least_used_today (default), round_robin or weighted.

Only available accounts are candidates: an account that is paused, unhealthy, or at a cap
(daily, hourly, per-minute; its own or its provider's) is skipped. When none is available,
`earliest_ready` says when the first one will be (None: only an operator's resume will help).
"""

from __future__ import annotations

import random

import redis

from pipeline.config import RouteConfig, Strategy
from pipeline.limits.quota import AccountUsage
from pipeline.limits.quota import sent_today as _sent_today
from pipeline.state import keys


def sent_today(client: redis.Redis, accounts: list[str], now: float, timezone: str, tenant: str = "default") -> dict[str, int]:
    """Per account, sent today. Accounts belong to the deployment: `tenant` is accepted, not used."""
    return _sent_today(client, accounts, now, timezone)


def choose(
    client: redis.Redis,
    route: RouteConfig | None,
    candidates: list[str],
    *,
    usage: dict[str, AccountUsage],
    weights: dict[str, int],
    assigned: dict[str, int] | None = None,
) -> str | None:
    """The account for one message, or None when every candidate is unavailable.

    `assigned` tallies choices already made in this batch (usage is counted at send time, so
    without it a whole batch would pile onto the same least-used account).
    """
    available = [c for c in candidates if c in usage and usage[c].available]
    if not available:
        return None
    assigned = assigned if assigned is not None else {}
    strategy = route.strategy if route else Strategy.LEAST_USED_TODAY
    if len(available) == 1:
        pick = available[0]
    elif strategy == Strategy.ROUND_ROBIN:
        turn = int(client.incr(keys.rotation("default", route.label if route else "default")))
        pick = available[turn % len(available)]
    elif strategy == Strategy.WEIGHTED:
        pick = random.choices(available, weights=[weights.get(c, 1) for c in available])[0]
    else:
        load = {c: usage[c].sent_today + assigned.get(c, 0) for c in available}
        low = min(load.values())
        pick = random.choice([c for c in available if load[c] == low])
    assigned[pick] = assigned.get(pick, 0) + 1
    return pick


def earliest_ready(candidates: list[str], usage: dict[str, AccountUsage]) -> float | None:
    """When the first unavailable candidate can send again (None if all need a resume)."""
    times = [t for c in candidates if c in usage and (t := usage[c].next_ready) is not None]
    return min(times, default=None)
