"""A point-in-time view of the running system, read from Redis: queues, workers, accounts, totals.

Read by the metrics `StateCollector` at scrape time and by `mailpipe status`. Nothing here
writes. Dramatiq's Redis broker keeps, under its namespace (`BrokerConfig.namespace`):
`ns:<queue>` (list of ready message ids), `ns:<queue>.msgs` (hash id → message, ready and
fetched-but-unacked), `ns:<queue>.DQ[.msgs]` (the delay queue), `ns:<queue>.XQ` (dead letters,
a sorted set) and `ns:__heartbeats__` (worker id → last heartbeat, ms).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any, cast

import redis

from pipeline.config import Config
from pipeline.config.resolve import limits_of
from pipeline.limits.backoff import effective_factor
from pipeline.limits.rotation import sent_today
from pipeline.limits.throttle import throttles_last_hour
from pipeline.models import STAGES, queue_name
from pipeline.plugin_host.manager import get_plugin_manager, preset_for
from pipeline.plugin_host.presets import Limits
from pipeline.registry.cache import Registry
from pipeline.state import keys, lua_scripts

STAGE_QUEUES = tuple(queue_name(stage) for stage in STAGES)
RECENT_WINDOW = 3600.0
RECENT_MAX_ENTRIES = 200_000
_STREAM_CHUNK = 5_000

_QUEUES = lua_scripts.load("queue_depths")


@dataclass(frozen=True)
class QueueDepth:
    """Broker messages (each carries up to 100 emails) of one stage queue."""

    queue: str
    ready: int
    in_flight: int
    delayed: int
    dead: int
    oldest_age: float  # seconds the head of the ready list has waited; 0 when empty


@dataclass(frozen=True)
class WorkerSeen:
    worker_id: str
    last_seen: float
    alive: bool


@dataclass(frozen=True)
class AccountView:
    name: str
    provider: str
    health: str
    reason: str
    sent_today: int
    daily_cap: int | None
    configured_rate: float | None
    effective_rate: float | None
    throttles_last_hour: int


@dataclass(frozen=True)
class Totals:
    outcomes: dict[str, int]  # accepted and each final outcome, all tenants, since Redis began
    pending: int
    suppressed: int


def queue_depths(client: redis.Redis, namespace: str, now: float | None = None) -> list[QueueDepth]:
    now_ms = (now if now is not None else time.time()) * 1000
    rows = lua_scripts.run(client, _QUEUES.bind(keys=[], args=[namespace, *STAGE_QUEUES]))
    out = []
    for queue, (ready, held, delayed, dead, ts, eta) in zip(STAGE_QUEUES, rows, strict=True):
        since = max(int(ts), int(eta))
        age = max(0.0, (now_ms - since) / 1000) if ready and since > 0 else 0.0
        out.append(QueueDepth(queue, int(ready), max(0, int(held) - int(ready)), int(delayed), int(dead), age))
    return out


def workers_seen(client: redis.Redis, namespace: str, heartbeat_timeout_ms: int, now: float | None = None) -> list[WorkerSeen]:
    now_ms = (now if now is not None else time.time()) * 1000
    rows: list[tuple[bytes, float]] = cast(Any, client.zrange(f"{namespace}:__heartbeats__", 0, -1, withscores=True))
    return [WorkerSeen(member.decode(), score / 1000, now_ms - score < heartbeat_timeout_ms) for member, score in rows]


def account_limits(config: Config) -> dict[str, Limits]:
    """Each declared account's limits exactly as the send gate applies them (no secret is resolved)."""
    pm = get_plugin_manager(config)
    return {a.name: limits_of(a, preset_for(a, pm)) for a in config.accounts}


def configured_rate(limits: Limits) -> float | None:
    """The steady per-second rate the limits allow: the tightest of per second, minute and hour."""
    rates = [limits.per_second, *(n / 60 for n in [limits.per_minute] if n), *(n / 3600 for n in [limits.per_hour] if n)]
    found = [r for r in rates if r]
    return min(found) if found else None


def accounts(client: redis.Redis, config: Config, limits: dict[str, Limits], now: float | None = None) -> list[AccountView]:
    """The declared accounts' standing (the `default` tenant's, when no database is configured)."""
    entries = [(a.name, a.provider) for a in config.accounts]
    return views(client, entries, limits, config.rate_limit.timezone, now)


def tenant_accounts(
    client: redis.Redis, registry: Registry, tenant: str, timezone: str, now: float | None = None
) -> list[AccountView]:
    """A tenant's accounts from the registry, with the limits the gate enforces for them."""
    held = sorted(registry.tenant(tenant).accounts.values(), key=lambda a: a.name)
    entries = [(a.ref, a.config.provider) for a in held]
    paused = {a.ref: a.status for a in held if not a.usable}
    found = views(client, entries, {a.ref: a.resolved.limits for a in held}, timezone, now)
    return [replace(v, health=paused[v.name]) if v.name in paused and v.health == "up" else v for v in found]


def views(
    client: redis.Redis, entries: list[tuple[str, str]], limits: dict[str, Limits], timezone: str, now: float | None = None
) -> list[AccountView]:
    now = now if now is not None else time.time()
    names = [name for name, _ in entries]
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.hgetall(keys.account_state("default", name))
    states = pipe.execute()
    used = sent_today(client, names, now, timezone)
    throttles = throttles_last_hour(client, names, now)
    out = []
    for (name, provider), raw in zip(entries, states, strict=True):
        state = {k.decode(): v.decode() for k, v in raw.items()}
        limit = limits.get(name, Limits())
        factor = effective_factor(state, now)
        configured = configured_rate(limit)
        out.append(
            AccountView(
                name=name,
                provider=provider,
                health=state.get("health") or "up",
                reason=state.get("reason", ""),
                sent_today=used[name],
                daily_cap=limit.per_day,
                configured_rate=configured,
                effective_rate=configured * factor if configured else None,
                throttles_last_hour=throttles[name],
            )
        )
    return out


def totals(client: redis.Redis) -> Totals:
    members: set[bytes] = cast(Any, client.smembers(keys.tenants()))
    tenants = sorted(t.decode() for t in members) or ["default"]
    pipe = client.pipeline(transaction=False)
    for tenant in tenants:
        pipe.hgetall(keys.outcome_counts(tenant))
        pipe.zcard(keys.pending(tenant))
        pipe.hlen(keys.suppression(tenant))
    replies = pipe.execute()
    outcomes: Counter[str] = Counter()
    pending = suppressed = 0
    for i in range(len(tenants)):
        counts, waiting, listed = replies[3 * i : 3 * i + 3]
        outcomes.update({k.decode(): int(v) for k, v in counts.items()})
        pending += int(waiting)
        suppressed += int(listed)
    return Totals(dict(outcomes), pending, suppressed)


def archive_backlog(client: redis.Redis) -> int:
    """Events stream entries the archiver has not committed yet (not yet read, or read and pending),
    over every tenant. With a database a final event keeps its hot keys until archived, so this is
    also what Redis holds back."""
    from pipeline.archive.consumer import GROUP

    members: set[bytes] = cast(Any, client.smembers(keys.tenants()))
    pipe = client.pipeline(transaction=False)
    for tenant in sorted(t.decode() for t in members):
        pipe.xinfo_groups(keys.events_stream(tenant))
        pipe.xlen(keys.events_stream(tenant))
    replies = pipe.execute(raise_on_error=False)
    backlog = 0
    for groups, length in zip(replies[::2], replies[1::2], strict=True):
        if isinstance(groups, Exception):
            continue  # no stream yet
        archive = [g for g in groups if _text(g.get("name")) == GROUP]
        if not archive:  # no archiver ever ran: everything in the stream waits
            backlog += int(length)
        else:
            backlog += int(archive[0].get("pending") or 0) + int(archive[0].get("lag") or 0)
    return backlog


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def recent_outcomes(
    client: redis.Redis,
    tenant: str = "default",
    window: float = RECENT_WINDOW,
    now: float | None = None,
    max_entries: int = RECENT_MAX_ENTRIES,
) -> tuple[Counter[str], bool]:
    """States recorded on the tenant's events stream in the last `window` seconds; True if cut short."""
    now = now if now is not None else time.time()
    start = f"{int((now - window) * 1000)}-0"
    counts: Counter[str] = Counter()
    read = 0
    while read < max_entries:
        entries: list[tuple[bytes, dict[bytes, bytes]]] = cast(
            Any, client.xrange(keys.events_stream(tenant), min=start, max="+", count=min(_STREAM_CHUNK, max_entries - read))
        )
        if not entries:
            return counts, False
        for _, fields in entries:
            counts[fields.get(b"state", b"?").decode()] += 1
        read += len(entries)
        last = entries[-1][0].decode()
        millis, seq = last.split("-")
        start = f"{millis}-{int(seq) + 1}"
    return counts, True
