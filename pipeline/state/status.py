"""Status store: acceptance, status history, exactly-one final outcome, the events stream.

An event hash holds `state` (latest), `outcome` (the final one, set once), the original event
JSON (so a stalled event can be re-driven) and counters; the history is a list of JSON entries;
every transition is appended to the tenant's events stream.

Redis holds hot state only (docs/architecture.md: "Stores"): once an event is final its hash and
history expire after ``Retention.hot``; the stream is trimmed by length and by age. Beyond the hot
window an event_id stays taken for ``Retention.dedupe_window`` in one of two places:

- with a database (a ``cold`` store): the delivery log in PostgreSQL (pipeline/archive) is the system
  of record. A final event's hash gets only a backstop TTL here; the archiver shortens it to ``hot``
  once the event's final row is committed, so at every moment Redis holds the hash or PostgreSQL
  holds the final row. ``accept`` asks the delivery log once per batch about the ids Redis may have
  let go, and leaves no marker in Redis.
- without one: a dedupe marker, one field in a small per-period, per-shard hash (a listpack: about
  20 bytes per event instead of a key of ~100).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis

from pipeline.errors import MailpipeError
from pipeline.models import FINAL_OUTCOMES, LeadEvent
from pipeline.state import keys, lua_scripts
from pipeline.state.script_pipeline import ScriptPipeline

STREAM_MAXLEN = 1_000_000
HISTORY_MAX = 200

_ACCEPT = lua_scripts.load("status_accept")
_TRANSITION = lua_scripts.load("status_transition")
DAY = 86_400.0
SHARDS_PER_DAY = 4096
GUARD_ERROR = "MAILPIPE_DEDUPE_IN_DATABASE"


class DedupeInDatabase(MailpipeError):
    """A submitter without the database met a deployment whose deduplication beyond the hot window is
    the delivery log's: accepting here could send an event_id twice."""


@dataclass(frozen=True)
class Retention:
    """Seconds each piece of hot state outlives an event's final outcome ([retention] in the config)."""

    hot: float = 86_400.0
    dedupe_window: float = 30 * 86_400.0
    stream_max_age: float = 86_400.0
    # One set of dedupe hashes per period of final outcomes (deployments without a database). 0: whole
    # days, about a sixth of the window, so an accept probes 7 hashes for 30 days instead of 31; a
    # marker then lives up to one period beyond the window.
    dedupe_bucket: float = 0.0
    # 0: 4,096 shards per day of a period, which keeps a bucket of up to ~500k final events a day per
    # tenant in listpack encoding (hash-max-listpack-entries 128); beyond that Redis converts a shard
    # to a hashtable, ~70 B a field
    dedupe_shards: int = 0

    def __post_init__(self) -> None:
        if self.dedupe_bucket == 0 and self.dedupe_window >= 1:
            object.__setattr__(self, "dedupe_bucket", DAY * max(1, math.ceil(self.dedupe_window / DAY / 6)))
        if self.dedupe_shards == 0:
            object.__setattr__(self, "dedupe_shards", SHARDS_PER_DAY * max(1, round(self.dedupe_bucket / DAY)))
        for name in ("hot", "dedupe_window", "stream_max_age", "dedupe_bucket"):
            if getattr(self, name) < 1:
                raise ValueError(f"retention.{name} must be at least 1 second")
        if self.dedupe_shards < 1:
            raise ValueError("retention.dedupe_shards must be at least 1")

    @property
    def backstop(self) -> int:
        """With a database: how long a final event's hash lives if the archiver never archives it."""
        return int(max(self.hot, self.dedupe_window))

    def bucket(self, at: float) -> int:
        return int(at // self.dedupe_bucket)

    def bucket_expires(self, bucket: int) -> int:
        """The whole period, then the window: every marker lives at least ``dedupe_window`` after it is set."""
        return int((bucket + 1) * self.dedupe_bucket + self.dedupe_window) + 1


@dataclass
class Transition:
    tenant: str
    event_id: str
    state: str
    entry: dict[str, Any] = field(default_factory=dict)
    update: bool = False  # a later status (bounce mail after `sent`): history only, never a second outcome

    @property
    def final(self) -> bool:
        return self.state in FINAL_OUTCOMES and not self.update


@dataclass
class EventStatus:
    event_id: str
    tenant: str
    state: str
    outcome: str | None
    created: float
    updated: float
    history: list[dict[str, Any]]
    event: dict[str, Any] | None


class ColdStatus(Protocol):
    """The delivery log seen from the hot store: where an event is found once Redis let it go."""

    def status(self, tenant: str, event_id: str) -> EventStatus | None: ...

    def known(self, pairs: list[tuple[str, str]], since: float) -> set[tuple[str, str]]:
        """The (tenant, event_id) pairs of ``pairs`` with a final row created at ``since`` or later."""
        ...


class StatusStore:
    def __init__(self, client: redis.Redis, *, retention: Retention | None = None, cold: ColdStatus | None = None) -> None:
        self.client = client
        self.retention = retention or Retention()
        self.cold = cold

    def accept(self, events: list[LeadEvent]) -> list[bool]:
        """Record events as accepted; False for each event_id already known (a duplicate).

        With a database, the delivery log is asked first (one query for the batch) about event_ids
        final within the dedupe window; Redis then decides for the rest (its hot hashes, atomically)."""
        if not events:
            return []
        now = time.time()
        known: set[tuple[str, str]] = set()
        if self.cold is not None:
            known = self.cold.known([(e.tenant, e.event_id) for e in events], now - self.retention.dedupe_window)
        mode = "redis" if self.cold is None else "database"
        pipe = ScriptPipeline(self.client)
        tenants = {event.tenant for event in events}
        for tenant in tenants:
            pipe.pipe.sadd(keys.tenants(), tenant)
        if self.cold is not None:
            pipe.pipe.set(keys.dedupe_in_database(), "1", ex=self.retention.backstop)
        head = len(pipe.pipe)
        oldest, current = self.retention.bucket(now - self.retention.dedupe_window), self.retention.bucket(now)
        called: list[int] = []
        for index, event in enumerate(events):
            if (event.tenant, event.event_id) in known:
                continue
            called.append(index)
            entry = json.dumps({"at": now, "state": "accepted", "stage": "submit"})
            due = event.send_at.timestamp() if event.send_at else now
            shard, slot = keys.dedupe_slot(event.event_id, self.retention.dedupe_shards)
            pipe.call(
                _ACCEPT.bind(
                    keys=[
                        keys.event(event.tenant, event.event_id),
                        keys.history(event.tenant, event.event_id),
                        keys.events_stream(event.tenant),
                        keys.pending(event.tenant),
                        keys.outcome_counts(event.tenant),
                        keys.dedupe_marker(event.tenant, event.event_id),
                        keys.dedupe_buckets(event.tenant),
                        keys.dedupe_in_database(),
                    ],
                    args=[
                        event.event_id,
                        event.tenant,
                        event.to_json(),
                        now,
                        entry,
                        max(due, now),
                        STREAM_MAXLEN,
                        slot,
                        shard,
                        oldest,
                        current,
                        mode,
                    ],
                )
            )
        results = pipe.execute(raise_on_error=False)[head:]
        verdicts = [False] * len(events)
        for index, result in zip(called, results, strict=True):
            if isinstance(result, Exception):
                if GUARD_ERROR in str(result):
                    raise DedupeInDatabase(
                        "this deployment keeps event_id deduplication beyond the hot window in its database: "
                        "submit with the database configured (pipeline.Client.from_config, or database_url=)"
                    )
                raise result
            verdicts[index] = bool(result)
        return verdicts

    def forget(self, events: list[LeadEvent]) -> None:
        """Undo an acceptance whose enqueue failed, so the upstream can resubmit."""
        pipe = self.client.pipeline(transaction=False)
        for event in events:
            pipe.delete(keys.event(event.tenant, event.event_id), keys.history(event.tenant, event.event_id))
            pipe.zrem(keys.pending(event.tenant), event.event_id)
        pipe.execute()

    def record(self, transitions: list[Transition], *, refused: dict[int, Exception] | None = None) -> list[bool]:
        """Apply transitions; a second final outcome for one event is ignored (returns False).

        With `refused`, a transition Redis refuses (an error on its own keys, such as WRONGTYPE)
        does not raise: it is False, its error goes into `refused` under its index, and the
        others are applied as usual (a stage batch fails that one item alone)."""
        if not transitions:
            return []
        now = time.time()
        bucket = self.retention.bucket(now)
        expires = self.retention.bucket_expires(bucket)
        database = self.cold is not None
        # with a database the archiver shortens this to `hot` once the final row is committed, and it
        # trims the stream by age itself, never past an entry it has not archived yet
        ttl = self.retention.backstop if database else int(self.retention.hot)
        pipe = ScriptPipeline(self.client)
        for t in transitions:
            entry = {"at": now, "state": t.state, **t.entry}
            shard, slot = keys.dedupe_slot(t.event_id, self.retention.dedupe_shards)
            if database:
                slot = ""
            pipe.call(
                _TRANSITION.bind(
                    keys=[
                        keys.event(t.tenant, t.event_id),
                        keys.history(t.tenant, t.event_id),
                        keys.events_stream(t.tenant),
                        keys.pending(t.tenant),
                        keys.outcome_counts(t.tenant),
                        keys.dedupe_bucket(t.tenant, bucket, shard),
                    ],
                    args=[
                        t.event_id,
                        t.tenant,
                        t.state,
                        int(t.final),
                        now,
                        json.dumps(entry, default=str),
                        STREAM_MAXLEN,
                        HISTORY_MAX,
                        ttl,
                        expires,
                        0 if database else int((now - self.retention.stream_max_age) * 1000),
                        slot,
                    ],
                )
            )
        if database and any(t.final for t in transitions):
            pipe.pipe.set(keys.dedupe_in_database(), "1", ex=self.retention.backstop)
        results = pipe.execute(raise_on_error=refused is None)[: len(transitions)]
        if refused is not None:
            refused.update({i: r for i, r in enumerate(results) if isinstance(r, Exception)})
        if self.cold is not None:
            late = [(i, t) for i, (t, r) in enumerate(zip(transitions, results, strict=True)) if r == -1 and t.update]
            for i, t in late:
                results[i] = 1 if self._record_late(self.cold, t, now) else -1
        return [r == 1 for r in results]

    def _record_late(self, cold: ColdStatus, t: Transition, now: float) -> bool:
        """An update (bounce mail, webhook) for an event Redis no longer holds: onto the stream for the delivery log."""
        found = cold.status(t.tenant, t.event_id)
        if found is None:
            return False
        entry = json.dumps({"at": now, "state": t.state, **t.entry}, default=str)
        fields = {"event_id": t.event_id, "tenant": t.tenant, "state": t.state, "entry": entry, "created": found.created}
        self.client.xadd(keys.events_stream(t.tenant), fields, maxlen=STREAM_MAXLEN, approximate=True)  # type: ignore[arg-type]
        return True

    def expect_progress(self, tenant: str, event_ids: list[str], at: float) -> None:
        """Tell the sweeper when these waiting events are next due to move."""
        if event_ids:
            self.client.zadd(keys.pending(tenant), {eid: at for eid in event_ids}, xx=True)

    def get(self, tenant: str, event_id: str) -> EventStatus | None:
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(keys.event(tenant, event_id))
        pipe.lrange(keys.history(tenant, event_id), 0, -1)
        data, history = pipe.execute()
        if not data:
            return self.cold.status(tenant, event_id) if self.cold is not None else None
        text = {k.decode(): v.decode() for k, v in data.items()}
        return EventStatus(
            event_id=event_id,
            tenant=tenant,
            state=text.get("state", "unknown"),
            outcome=text.get("outcome"),
            created=float(text.get("created", 0)),
            updated=float(text.get("updated", 0)),
            history=[json.loads(h) for h in history],
            event=json.loads(text["event"]) if "event" in text else None,
        )

    def outcomes(self, event_ids: list[str], tenant: str = "default") -> dict[str, str | None]:
        pipe = self.client.pipeline(transaction=False)
        for event_id in event_ids:
            pipe.hget(keys.event(tenant, event_id), "outcome")
        return {eid: (v.decode() if v else None) for eid, v in zip(event_ids, pipe.execute(), strict=True)}

    def outcome_counts(self, tenant: str = "default") -> dict[str, int]:
        raw = self.client.hgetall(keys.outcome_counts(tenant))
        return {_text(k): int(v) for k, v in raw.items()}

    def stalled(self, tenant: str, older_than: float, limit: int = 1000) -> list[str]:
        ids = self.client.zrangebyscore(keys.pending(tenant), "-inf", time.time() - older_than, start=0, num=limit)
        return [_text(i) for i in ids]

    def dead_letter(self, tenant: str, event_id: str, stage: str, error: str, payload: Any) -> None:
        record = {"at": time.time(), "stage": stage, "error": error, "payload": payload}
        self.client.hset(keys.dead_letter(tenant), event_id, json.dumps(record, default=str))

    def dead_letters(self, tenant: str = "default") -> dict[str, dict[str, Any]]:
        raw = self.client.hgetall(keys.dead_letter(tenant))
        return {_text(k): json.loads(v) for k, v in raw.items()}

    def refuse_input(self, tenant: str, raw: str, errors: list[str], source: str) -> None:
        """Keep refused input (bad events at submit) so nothing vanishes silently."""
        record = {"at": time.time(), "source": source, "errors": errors, "raw": raw[:4000]}
        pipe = self.client.pipeline(transaction=False)
        pipe.rpush(keys.refused_input(tenant), json.dumps(record))
        pipe.ltrim(keys.refused_input(tenant), -100_000, -1)
        pipe.execute()


def _text(value: Any) -> str:
    """A Redis reply as text (the clients here return bytes)."""
    return value.decode() if isinstance(value, bytes) else str(value)
