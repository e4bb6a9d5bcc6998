"""Window counters taken at send time: the hard caps per minute, hour and day (docs/architecture.md: "Rate limits").

`SendGate.take` runs right before the SMTP transaction, in one atomic script: the account must be
up (not paused, not unhealthy, not marked exhausted), every per-second sliding log of its scopes
(account — scaled by the back-off factor —, provider, recipient domain) must have room, and every
capped minute/hour/day counter must be below its cap; only then are they all taken together.
Minute and hour buckets are aligned to the epoch; day buckets follow `rate_limit.timezone`, so
daily counts reset at that zone's midnight. Counts are taken when a message is sent, never when
it is queued, and given back when the server did not accept the message.
"""

from __future__ import annotations

import enum
import functools
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import redis
import redis.asyncio as aioredis

from pipeline.config import RateLimitConfig, ResolvedAccount
from pipeline.limits import backoff
from pipeline.limits.backoff import effective_factor
from pipeline.plugin_host.presets import Limits
from pipeline.state import keys, lua_scripts
from pipeline.state.script_batcher import ScriptBatcher

TENANT = "default"  # accounts belong to the deployment, not to a tenant


class Window(enum.StrEnum):
    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"


CAP_FIELD = {Window.MINUTE: "per_minute", Window.HOUR: "per_hour", Window.DAY: "per_day"}


def bucket(window: Window, now: float, timezone: str) -> str:
    if window == Window.MINUTE:
        return str(int(now // 60))
    if window == Window.HOUR:
        return str(int(now // 3600))
    return _day_of_minute(int(now // 60), timezone)[0]


def next_reset(window: Window, now: float, timezone: str) -> float:
    """When the window holding `now` ends (local midnight for days, DST-aware)."""
    if window == Window.MINUTE:
        return (now // 60 + 1) * 60
    if window == Window.HOUR:
        return (now // 3600 + 1) * 3600
    return _day_of_minute(int(now // 60), timezone)[1]


@functools.lru_cache(maxsize=64)
def _day_of_minute(minute: int, timezone: str) -> tuple[str, float]:
    """(local day bucket, next local midnight) for any instant of this minute — time zones move by whole
    minutes, so both are constant within one. Cached: with thousands of accounts every send gate plan
    asked zoneinfo for them (a tenth of a 10,000-tenant worker's gate time)."""
    zone = ZoneInfo(timezone)
    today = datetime.fromtimestamp(minute * 60, zone).date()
    midnight = datetime.combine(today + timedelta(days=1), datetime.min.time(), zone).timestamp()
    return today.strftime("%Y%m%d"), midnight


@dataclass(frozen=True)
class Scope:
    """What a limit applies to: one account, all accounts of a provider, or a recipient domain."""

    kind: str
    name: str
    limits: Limits

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.name}"

    def cap(self, window: Window) -> int | None:
        value: int | None = getattr(self.limits, CAP_FIELD[window])
        return value

    def counted(self) -> list[Window]:
        """Windows with a counter: every capped one, and the account's day (sent today)."""
        return [w for w in Window if self.cap(w) is not None or (self.kind == "account" and w == Window.DAY)]


def recipient_domain(address: str) -> str:
    return address.rsplit("@", 1)[-1].lower()


def scopes_for(account: ResolvedAccount, recipient: str | None, rate_limit: RateLimitConfig) -> list[Scope]:
    scopes = [Scope("account", account.name, account.limits)]
    provider = rate_limit.providers.get(account.provider)
    if provider is not None:
        scopes.append(Scope("provider", account.provider, provider))
    if recipient is not None:
        domain = recipient_domain(recipient)
        limits = rate_limit.domains.get(domain)
        if limits is not None:
            scopes.append(Scope("domain", domain, limits))
    return scopes


def counter_key(scope: Scope, window: Window, now: float, timezone: str) -> str:
    return keys.window_count(TENANT, scope.key, window.value, bucket(window, now, timezone))


def sent_today(client: redis.Redis, accounts: list[str], now: float, timezone: str) -> dict[str, int]:
    """Messages each account sent today (taken at send time, local day of `timezone`)."""
    day = bucket(Window.DAY, now, timezone)
    names = [keys.window_count(TENANT, f"account:{a}", Window.DAY.value, day) for a in accounts]
    values = client.mget(names) if names else []
    return {a: int(v or 0) for a, v in zip(accounts, values, strict=True)}


def log_key(scope: Scope) -> str:
    return keys.window_count(TENANT, scope.key, "second", "log")


class GateVerdict(enum.StrEnum):
    """The send gate's answer for one message (not `models.Verdict`, the classification of a server reply)."""

    OK = "ok"
    PAUSED = "paused"
    UNHEALTHY = "unhealthy"
    EXHAUSTED = "exhausted"  # marked by a provider quota signal
    EARLY = "early"  # a per-second log is full: re-reserve a slot
    CAP = "cap"  # a minute/hour/day cap is reached


@dataclass
class GateResult:
    verdict: GateVerdict
    until: float = 0.0  # when it is worth trying again (EARLY, CAP, EXHAUSTED)
    scope: Scope | None = None
    window: Window | None = None
    taken: list[str] = field(default_factory=list)  # counters to give back if the server refuses

    @property
    def ok(self) -> bool:
        return self.verdict == GateVerdict.OK

    @property
    def account_blocked(self) -> bool:
        """Another account may send it now (route), as opposed to waiting on this scope."""
        if self.verdict in (GateVerdict.PAUSED, GateVerdict.UNHEALTHY, GateVerdict.EXHAUSTED):
            return True
        return self.verdict == GateVerdict.CAP and self.scope is not None and self.scope.kind in ("account", "provider")


# Besides the per-second log (never more than the rate in any second), a GCRA spaces sends at the
# gate itself: at most SEND_BURST + 1 may go back to back when late deliveries bunch up.
SEND_BURST = 2

_TAKE = lua_scripts.load("send_gate_take", SEND_BURST=SEND_BURST, **backoff.LUA_CONSTANTS)
_REFUND = lua_scripts.load("counter_refund")
_USAGE = lua_scripts.load("account_usage_read")


@dataclass
class _Plan:
    keys: list[str]
    args: list[str | float | int]
    counters: list[list[tuple[str, Window]]]


def _static_plan(scopes: list[Scope], now: float, timezone: str) -> _Plan:
    plan_keys = [keys.account_state(TENANT, scopes[0].name)]
    args: list[str | float | int] = [len(scopes)]
    counters: list[list[tuple[str, Window]]] = []
    for scope in scopes:
        plan_keys += [log_key(scope), keys.window_count(TENANT, scope.key, "second", "spacing")]
        windows = scope.counted()
        args += [scope.limits.per_second or 0, int(scope.kind == "account"), len(windows)]
        mine = []
        for window in windows:
            key = counter_key(scope, window, now, timezone)
            cap = scope.cap(window)
            plan_keys.append(key)
            args += [-1 if cap is None else cap, int(next_reset(window, now, timezone) - now) + 3600]
            mine.append((key, window))
        counters.append(mine)
    return _Plan(plan_keys, args, counters)


class SendGate:
    """Check-and-take at send time, on the send stage's event loop (async Redis)."""

    def __init__(self, client: aioredis.Redis, rate_limit: RateLimitConfig, calls: ScriptBatcher | None = None) -> None:
        self.client = client
        self.rate_limit = rate_limit
        self.calls = calls or ScriptBatcher(client)  # shared with the ledger: one round trip per loop tick
        self._cache: dict[tuple[str, int, str], tuple[list[Scope], _Plan]] = {}
        self._cache_minute = -1

    async def take(self, account: ResolvedAccount, recipient: str, now: float | None = None) -> GateResult:
        """Check and take every limit of this message now. Without `now` the per-second logs use the
        Redis server's clock at the moment the script runs (one clock for all hosts, no stale time)."""
        server_clock = now is None
        now = time.time() if now is None else now
        scopes, plan = self._planned(account, recipient, now, server_clock)
        raw = await self.calls.run(_TAKE.bind(keys=plan.keys, args=plan.args))
        verdict, value, scope_index, counter_index = (item.decode() if isinstance(item, bytes) else str(item) for item in raw)
        result = GateResult(GateVerdict(verdict))
        if result.verdict == GateVerdict.OK:
            result.taken = [key for mine in plan.counters for key, _ in mine]
        elif result.verdict in (GateVerdict.EARLY, GateVerdict.EXHAUSTED):
            result.until = float(value)
            result.scope = scopes[int(scope_index) - 1] if int(scope_index) else None
        elif result.verdict == GateVerdict.CAP:
            result.scope = scopes[int(scope_index) - 1]
            result.window = plan.counters[int(scope_index) - 1][int(counter_index) - 1][1]
            result.until = next_reset(result.window, now, self.rate_limit.timezone)
        return result

    def _planned(self, account: ResolvedAccount, recipient: str, now: float, server_clock: bool) -> tuple[list[Scope], _Plan]:
        """Scopes and the minute's static plan, cached per (account, recipient domain, minute): building
        bucket keys and reset times (zoneinfo) for every message was a tenth of the gate's CPU."""
        minute = int(now // 60)
        if minute != self._cache_minute:
            self._cache.clear()
            self._cache_minute = minute
        cache_key = (account.name, id(account), recipient_domain(recipient))
        cached = self._cache.get(cache_key)
        if cached is None:
            scopes = scopes_for(account, recipient, self.rate_limit)
            cached = self._cache[cache_key] = (scopes, _static_plan(scopes, now, self.rate_limit.timezone))
            if len(self._cache) > 10_000:  # many recipient domains: start again rather than grow
                self._cache.clear()
        scopes, static = cached
        head: list[str | float | int] = ["" if server_clock else now, f"{now:.6f}:{uuid.uuid4().hex[:10]}"]
        return scopes, _Plan(static.keys, head + static.args, static.counters)

    async def refund(self, result: GateResult) -> None:
        """Give the counts back: the server did not accept the message, so it was not sent."""
        if result.taken:
            await self.calls.run(_REFUND.bind(keys=result.taken, args=[]))
            result.taken = []


@dataclass
class AccountUsage:
    """One account's standing right now: what route, status and metrics read."""

    name: str
    sent_today: int = 0
    day_cap: int | None = None
    paused: bool = False
    health: str = "up"
    reason: str = ""
    factor: float = 1.0
    exhausted_until: float | None = None  # set when a cap (or quota signal) blocks it until then
    exhausted_by: str = ""

    @property
    def available(self) -> bool:
        return not self.paused and self.health == "up" and self.exhausted_until is None

    @property
    def next_ready(self) -> float | None:
        """When it may send again; None if only an operator (resume) can make it."""
        if self.paused or self.health != "up":
            return None
        return self.exhausted_until


def read_usage(
    client: redis.Redis, accounts: list[ResolvedAccount], rate_limit: RateLimitConfig, now: float | None = None
) -> dict[str, AccountUsage]:
    """Every account's counters, caps and state in one round trip (one script call)."""
    now = time.time() if now is None else now
    if not accounts:
        return {}
    names: list[str] = []
    per_account: list[int] = []
    plans: list[tuple[ResolvedAccount, list[tuple[Scope, Window]]]] = []
    for account in accounts:
        counted = [(scope, w) for scope in scopes_for(account, None, rate_limit) for w in scope.counted()]
        names.append(keys.account_state(TENANT, account.name))
        names += [counter_key(scope, window, now, rate_limit.timezone) for scope, window in counted]
        per_account.append(len(counted))
        plans.append((account, counted))
    rows: list[list[Any]] = lua_scripts.run(client, _USAGE.bind(keys=names, args=per_account))
    out: dict[str, AccountUsage] = {}
    for (account, counted), row in zip(plans, rows, strict=True):
        flat = row[: len(row) - len(counted)]
        state: dict[str, str] = {flat[i].decode(): flat[i + 1].decode() for i in range(0, len(flat), 2)}
        usage = AccountUsage(
            name=account.name,
            day_cap=account.limits.per_day,
            paused=state.get("paused") == "1",
            health=state.get("health", "up"),
            reason=state.get("reason", ""),
            factor=effective_factor(state, now),
        )
        blocked: list[tuple[float, str]] = []
        marked = float(state.get("exhausted_until") or 0)
        if marked > now:
            blocked.append((marked, "provider quota"))
        for (scope, window), value in zip(counted, row[len(row) - len(counted) :], strict=True):
            used = int(value or 0)
            if scope.kind == "account" and window == Window.DAY:
                usage.sent_today = used
            cap = scope.cap(window)
            if cap is not None and used >= cap:
                blocked.append((next_reset(window, now, rate_limit.timezone), f"{scope.key} {window.value} cap"))
        if blocked:
            usage.exhausted_until, usage.exhausted_by = max(blocked)
        out[account.name] = usage
    return out
