"""Re-drive accepted events that stopped moving, so nothing accepted is ever lost.

Every accepted event sits in its tenant's `pending` sorted set until its final outcome, scored
by when it is next due to move. Each stage hop moves the score forward (`progress_of`, written by
the actors together with the enqueue of the next step: now + the step's delay). An event whose score is
more than `stalled_after` seconds in the past made no progress: its broker message was lost (a
Redis restart dropped a worker's in-memory delayed messages, a message exhausted its retries, a
broker lost data). `sweep` sends such events back to render from the original event JSON kept in
the event hash. A re-drive is safe: the send ledger refuses a second send of an accepted event
and the status store keeps only the first final outcome.

`SweeperMiddleware` runs `sweep` in every worker process on a low-frequency thread; a Redis lock
(`SET NX PX interval`) lets only one worker sweep per interval.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import dramatiq
import redis
import structlog

from pipeline.context import StageContext
from pipeline.runtime.enqueue import Enqueuer
from pipeline.stages.batch import Forward
from pipeline.state import keys, lua_scripts
from pipeline.state.status import Transition

log = structlog.get_logger("mailpipe.sweeper")

# Stage items are pydantic JSON dumps; the lead event is the first object holding an event_id
# (models nest it first), dumped as "event_id":…,"tenant":… in field order.
_IDENTITY = re.compile(r'"event_id":"((?:[^"\\]|\\.)*)","tenant":"([A-Za-z0-9_.-]{1,64})"')

_CLAIM_STALLED = lua_scripts.load("sweeper_claim_stalled")
SCAN_CHUNK = 500


def identity(item: str) -> tuple[str, str] | None:
    """(tenant, event_id) of a stage item, without decoding the whole message."""
    match = _IDENTITY.search(item)
    if match is None:
        return None
    event_id = json.loads(f'"{match.group(1)}"') if "\\" in match.group(1) else match.group(1)
    return match.group(2), event_id


@dataclass
class Progress:
    """When each forwarded event is next due: now + its delay; only events still pending are touched."""

    client: redis.Redis
    scores: dict[str, dict[str, float]]  # tenant → event_id → due

    def queue(self, pipe: Any) -> None:
        for tenant, scores in self.scores.items():
            pipe.zadd(keys.pending(tenant), scores, xx=True)

    def write(self) -> None:
        if self.scores:
            pipe = self.client.pipeline(transaction=False)
            self.queue(pipe)
            pipe.execute()


def progress_of(client: redis.Redis, forwards: Iterable[Forward], now: float) -> Progress:
    due: dict[str, dict[str, float]] = {}
    for forward in forwards:
        found = identity(forward.item)
        if found is not None:
            tenant, event_id = found
            due.setdefault(tenant, {})[event_id] = now + forward.delay
    return Progress(client, due)


@dataclass
class SweepReport:
    redriven: list[tuple[str, str]] = field(default_factory=list)
    looked_at: int = 0


def sweep(ctx: StageContext, enqueuer: Enqueuer, *, stalled_after: float, limit: int = 1000) -> SweepReport:
    """Re-drive up to `limit` events stalled for more than `stalled_after` seconds. Idempotent."""
    report = SweepReport()
    tenants = sorted(t.decode() if isinstance(t, bytes) else str(t) for t in ctx.redis.smembers(keys.tenants()))
    for start in range(0, len(tenants), SCAN_CHUNK):
        # Thousands of tenants: their pending sets are read a chunk per round trip, not one each.
        chunk = tenants[start : start + SCAN_CHUNK]
        now = ctx.clock()
        pipe = ctx.redis.pipeline(transaction=False)
        for tenant in chunk:
            pipe.zrangebyscore(keys.pending(tenant), "-inf", now - stalled_after, start=0, num=limit - report.looked_at)
        for tenant, found in zip(chunk, pipe.execute(), strict=True):
            if found:
                _redrive(ctx, enqueuer, tenant, found[: limit - report.looked_at], now, stalled_after, report)
            if report.looked_at >= limit:
                return report
    return report


def _redrive(
    ctx: StageContext,
    enqueuer: Enqueuer,
    tenant: str,
    found: list[Any],
    now: float,
    stalled_after: float,
    report: SweepReport,
) -> None:
    stalled = [i.decode() if isinstance(i, bytes) else str(i) for i in found]
    report.looked_at += len(stalled)
    events: list[str] = []
    ids: list[str] = []
    for event_id in stalled:
        keys_ = [keys.pending(tenant), keys.event(tenant, event_id), keys.outcome_counts(tenant)]
        call = _CLAIM_STALLED.bind(keys=keys_, args=[event_id, now - stalled_after, now, stalled_after])
        event = lua_scripts.run(ctx.redis, call)
        if event:
            events.append(event.decode() if isinstance(event, bytes) else str(event))
            ids.append(event_id)
    for start in range(0, len(events), enqueuer.batch_size):
        enqueuer.send("render", events[start : start + enqueuer.batch_size])
    entry = {"stage": "sweeper", "stalled_after": stalled_after}
    ctx.status.record([Transition(tenant, eid, "redriven", entry) for eid in ids])
    report.redriven += [(tenant, eid) for eid in ids]


def redriven_count(client: redis.Redis, tenant: str = "default") -> int:
    return int(client.hget(keys.outcome_counts(tenant), "redriven") or 0)


class SweeperMiddleware(dramatiq.Middleware):
    """Starts one sweeper thread per worker process; a Redis lock keeps sweeps one at a time."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="mailpipe-sweeper", daemon=True)
        self._thread.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        self._stop.set()

    def _run(self) -> None:
        from pipeline.runtime import resources as runtime

        try:
            settings = runtime.context().config.sweeper
        except Exception as exc:  # a bad config is reported by the actors; never crash the worker
            log.error("sweeper_not_started", error=f"{type(exc).__name__}: {exc}")
            return
        if not settings.enabled:
            return
        token = uuid.uuid4().hex
        while not self._stop.wait(settings.interval * random.uniform(0.8, 1.2)):
            try:
                ctx = runtime.context()
                if not ctx.redis.set(keys.sweeper_lock(), token, nx=True, px=int(settings.interval * 1000)):
                    continue
                started = time.monotonic()
                report = sweep(ctx, runtime.enqueuer(), stalled_after=settings.stalled_after, limit=settings.batch)
                if report.redriven:
                    log.warning(
                        "stalled_events_redriven",
                        count=len(report.redriven),
                        stalled_after=settings.stalled_after,
                        seconds=round(time.monotonic() - started, 3),
                    )
            except Exception as exc:  # Redis down: try again next interval
                log.warning("sweep_failed", error=f"{type(exc).__name__}: {exc}")
