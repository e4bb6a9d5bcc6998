"""Send slots shared through Redis (docs/architecture.md: "Rate limits"): GCRA with reservation, several scopes.

One atomic script hands each message of a batch its own future slot: the earliest time at which
every scope it belongs to (its account, the account's provider, its recipient domain) is free,
then advances each of those scopes by its interval. A scope's interval is the largest of its
per-window intervals (1/per_second, 60/per_minute, 3600/per_hour), so minute and hour limits
are spaced, never burst at a window edge; an account's interval is stretched by its back-off
factor (the `backoff_factor` Lua fragment, see backoff.py). Jitter ("randomize delay", `rate_limit.jitter_ms`, off by
default) lengthens each gap by a random amount, so spacing never shrinks below the interval.

Slots are reserved at most HORIZON seconds ahead; a message further out is told to come back to
rate_limit shortly before its estimated turn (unreserved), so a back-off or a pause takes effect
within HORIZON seconds and the broker never holds hours of delayed sends. Nobody sleeps: the
caller forwards each message with its delay. The hard guarantee is re-checked at send time
(quota.SendGate); `rate_limit.headroom` (5% by default) spaces slots slightly wider than the limit
so timing jitter between here and the provider's own clock does not push its count over.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import redis

from pipeline.config import ResolvedAccount
from pipeline.limits import backoff
from pipeline.limits.quota import TENANT, Scope
from pipeline.plugin_host.presets import Limits
from pipeline.state import keys, lua_scripts

HORIZON = 2.0
DEFER_QUANTUM = 0.5  # deferred messages due within the same half second travel together

_RESERVE = lua_scripts.load("rate_reserve", **backoff.LUA_CONSTANTS)


def interval(limits: Limits) -> float:
    """Seconds between two sends that keep every per-window limit spaced (0: unlimited)."""
    candidates = []
    if limits.per_second:
        candidates.append(1.0 / limits.per_second)
    if limits.per_minute:
        candidates.append(60.0 / limits.per_minute)
    if limits.per_hour:
        candidates.append(3600.0 / limits.per_hour)
    return max(candidates, default=0.0)


def configured_rate(limits: Limits) -> float | None:
    """Sends per second the limits allow when spaced (None: unlimited)."""
    gap = interval(limits)
    return 1.0 / gap if gap else None


def effective_rate(limits: Limits, factor: float) -> float | None:
    """The configured rate after back-off (factor from backoff.effective_factor)."""
    rate = configured_rate(limits)
    return None if rate is None else rate * factor


@dataclass
class Slot:
    delay: float
    reserved: bool  # False: not yet reserved, come back to rate_limit after `delay`


class RateLimiter:
    def __init__(self, client: redis.Redis, *, jitter_ms: int = 0, tenant: str = TENANT, horizon: float = HORIZON) -> None:
        self.client = client
        self.jitter = jitter_ms / 1000.0
        self.tenant = tenant
        self.horizon = horizon

    def reserve(self, account: ResolvedAccount, count: int, now: float) -> list[float]:
        """Delays (seconds from now) for `count` messages on this account alone, in order."""
        scope = Scope("account", account.name, account.limits)
        return [slot.delay for slot in self.reserve_slots([[scope]] * count, now)]

    def reserve_slots(self, requests: list[list[Scope]], now: float, *, headroom: float = 0.0) -> list[Slot]:
        """One slot per message; each message lists its scopes (the account first).

        `headroom` widens every interval by that fraction (rate_limit.headroom)."""
        if not requests:
            return []
        scope_index: dict[str, int] = {}
        scopes: list[Scope] = []
        for message_scopes in requests:
            for scope in message_scopes:
                if scope.key not in scope_index:
                    scope_index[scope.key] = len(scopes) + 1
                    scopes.append(scope)
        accounts = [s for s in scopes if s.kind == "account"]
        state_index = {s.key: i + 1 for i, s in enumerate(accounts)}
        script_keys = [keys.rate_tat(self.tenant, s.key) for s in scopes]
        script_keys += [keys.account_state(self.tenant, s.name) for s in accounts]
        args: list[float | int] = [now, self.horizon, DEFER_QUANTUM, len(scopes)]
        for scope in scopes:
            args += [interval(scope.limits) * (1 + headroom), state_index.get(scope.key, 0)]
        args.append(len(requests))
        for message_scopes in requests:
            args += [random.uniform(0, self.jitter) if self.jitter else 0.0, len(message_scopes)]
            args += [scope_index[s.key] for s in message_scopes]
        raw = lua_scripts.run(self.client, _RESERVE.bind(keys=script_keys, args=args))
        slots = []
        for item in raw:
            text = item.decode() if isinstance(item, bytes) else str(item)
            if text.startswith("w"):
                slots.append(Slot(max(0.0, float(text[1:])), reserved=False))
            else:
                slots.append(Slot(max(0.0, float(text)), reserved=True))
        return slots
