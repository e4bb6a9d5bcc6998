"""The archiver: the events stream (and the suppression log) into PostgreSQL, in batches, off the send path.

One consumer group (``archive``) over every tenant's streams; any number of consumers, in any
number of processes, share it. Delivery is at-least-once: a batch is written in one transaction
and acknowledged after the commit, so a consumer killed mid-batch leaves its entries pending, and
another consumer claims them once they have been idle for ``claim_idle_ms``. Writing is
idempotent, so the replayed part of a batch changes nothing:

- a history row is keyed by its stream entry id (``ON CONFLICT DO NOTHING``);
- an event row is upserted by (tenant, event_id, created) and only ever moves forward: the newest
  ``updated_at`` decides the state, the first outcome stays, attempts only grow.

The archiver also ends a final event's hot life: with a database its status hash and history carry
only a backstop TTL (``Retention.backstop``), and after the commit that wrote the event's final row
the archiver sets them to expire ``hot`` seconds after the final outcome (in the same round trip as
the acknowledgement). Redis thus never lets go of an event PostgreSQL does not know yet, which is
what makes the delivery log the deduplication store beyond the hot window. If no archiver runs,
final events keep their hot keys (up to the backstop): ``mailpipe_archive_backlog_entries`` and the
MailpipeArchiveBehind alert show it.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import redis
import structlog
from sqlalchemy import Engine

from pipeline.archive import partitions
from pipeline.db.delivery_tables import TENANT_WIDE
from pipeline.inbox.index import normalise_message_id
from pipeline.state import keys

GROUP = "archive"
log = structlog.get_logger("mailpipe.archive")

# Maps the suppression reasons workers write into Redis onto the database's five.
_SUPPRESSION_REASON = {
    "unsubscribed": "unsubscribe",
    "unsubscribe": "unsubscribe",
    "feedback": "complaint",
    "complaint": "complaint",
}

# Per-attempt fields: the newer write wins, but a value never turns back into NULL.
_LATEST_WINS = ",\n".join(
    f"    {c} = CASE WHEN excluded.updated_at >= d.updated_at"
    f" THEN COALESCE(excluded.{c}, d.{c}) ELSE COALESCE(d.{c}, excluded.{c}) END"
    for c in ("sender", "account", "route", "reason", "last_reply")
)

_EVENT_COLUMNS = (
    ("tenant", "text"),
    ("event_id", "text"),
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
    ("final_at", "timestamptz"),
    ("state", "text"),
    ("outcome", "text"),
    ("campaign", "text"),
    ("list", "text"),
    ("sender", "text"),
    ("recipient", "text"),
    ("account", "text"),
    ("route", "text"),
    ("reason", "text"),
    ("last_reply", "text"),
    ("attempts", "int"),
    ("message_id", "text"),
    ("retry_of", "text"),
    ("metadata", "jsonb"),
    ("event", "jsonb"),
)
_HISTORY_COLUMNS = (
    ("tenant", "text"),
    ("stream_id", "text"),
    ("at", "timestamptz"),
    ("event_id", "text"),
    ("state", "text"),
    ("entry", "jsonb"),
)


def _recordset(columns: tuple[tuple[str, str], ...]) -> str:
    """``SELECT … FROM jsonb_to_recordset(…)``: a whole batch as one JSON document, one statement (one
    round trip, one parse, and json.dumps in C instead of psycopg binding row by row in Python)."""
    spec = ", ".join(f"{name} {kind}" for name, kind in columns)
    names = ", ".join(f"u.{name}" for name, _ in columns)
    return f"SELECT {names} FROM jsonb_to_recordset(%(rows)s::jsonb) AS u({spec})"


_UPSERT_EVENT = f"""
INSERT INTO delivery_events AS d ({", ".join(name for name, _ in _EVENT_COLUMNS)})
{_recordset(_EVENT_COLUMNS)}
ON CONFLICT (tenant, event_id, created_at) DO UPDATE SET
    state = CASE WHEN excluded.updated_at >= d.updated_at THEN excluded.state ELSE d.state END,
    updated_at = GREATEST(d.updated_at, excluded.updated_at),
    outcome = COALESCE(d.outcome, excluded.outcome),
    final_at = COALESCE(d.final_at, excluded.final_at),
    campaign = COALESCE(d.campaign, excluded.campaign),
    list = COALESCE(d.list, excluded.list),
    recipient = COALESCE(d.recipient, excluded.recipient),
    retry_of = COALESCE(d.retry_of, excluded.retry_of),
    metadata = COALESCE(d.metadata, excluded.metadata),
    event = COALESCE(d.event, excluded.event),
{_LATEST_WINS},
    message_id = COALESCE(d.message_id, excluded.message_id),
    attempts = GREATEST(d.attempts, excluded.attempts)
"""

_INSERT_HISTORY = f"""
INSERT INTO delivery_history ({", ".join(name for name, _ in _HISTORY_COLUMNS)})
{_recordset(_HISTORY_COLUMNS)}
ON CONFLICT DO NOTHING
"""

_INSERT_SUPPRESSION = """
INSERT INTO suppressions (tenant, address, scope, reason, detail, source, created_at)
VALUES (%(tenant)s, %(address)s, %(scope)s, %(reason)s, %(detail)s, %(source)s, %(created_at)s)
ON CONFLICT (tenant, address, scope) DO NOTHING
"""


def _time(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def _iso(seconds: float) -> str:
    """A timestamp for the batch document: the same microseconds ``_time`` gives (rows are keyed on created_at)."""
    return _time(seconds).isoformat()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _ms(entry_id: bytes | str) -> int:
    """A stream entry id's millisecond part (MINID keeps every entry of that millisecond)."""
    return int(_text(entry_id).split("-")[0])


def suppression_reason(raw: str) -> str:
    """A worker's suppression reason (``user_unknown``, ``feedback``, …) as one of the database's five."""
    if raw in _SUPPRESSION_REASON:
        return _SUPPRESSION_REASON[raw]
    if raw in ("manual", "import"):
        return raw
    return "hard_bounce"


@dataclass
class _EventRow:
    tenant: str
    event_id: str
    created: float
    updated: float = 0.0
    state: str = "accepted"
    outcome: str | None = None
    final_at: float | None = None
    sender: str | None = None
    account: str | None = None
    route: str | None = None
    reason: str | None = None
    last_reply: str | None = None
    attempts: int = 0
    message_id: str | None = None
    accepted: bool = False

    def apply(self, state: str, final: bool, entry: dict[str, Any]) -> None:
        at = float(entry.get("at") or 0)
        if at >= self.updated:
            self.updated, self.state = at, state
            for name in ("sender", "account", "route", "reason"):
                if entry.get(name):
                    setattr(self, name, str(entry[name])[:300])
            reply = " ".join(str(entry[k]) for k in ("code", "enhanced", "reply") if entry.get(k) not in (None, ""))
            self.last_reply = reply or entry.get("error") or self.last_reply
        if final and self.outcome is None:
            self.outcome, self.final_at = state, at
        if isinstance(entry.get("attempt"), int):
            self.attempts = max(self.attempts, entry["attempt"])
        if entry.get("message_id") and self.message_id is None:
            self.message_id = normalise_message_id(str(entry["message_id"]))
        self.accepted |= state == "accepted"


@dataclass
class BatchReport:
    entries: int = 0
    events: int = 0
    suppressions: int = 0
    lag: list[float] = field(default_factory=list)  # seconds from each transition to its commit
    finals: list[tuple[str, str, float]] = field(default_factory=list)  # (tenant, event_id, final at) written


class Archiver:
    def __init__(
        self,
        client: redis.Redis,
        engine: Engine,
        *,
        consumer: str,
        batch: int = 1000,
        block_ms: int = 1000,
        claim_idle_ms: int = 30_000,
        keep_days: int = 90,
        hot: float = 86_400.0,
        stream_max_age: float = 86_400.0,
        linger_ms: int = 250,
    ) -> None:
        self.client = client
        self.engine = engine
        self.consumer = consumer
        self.batch = batch
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self.keep_days = keep_days
        self.hot = hot
        self.stream_max_age = stream_max_age
        self.linger_ms = linger_ms
        self._trimmed_at = 0.0
        self._grouped: set[str] = set()
        self._days: set[dt.date] = set()
        self._maintained_at = 0.0

    def streams(self) -> list[str]:
        tenants = sorted(_text(t) for t in self.client.smembers(keys.tenants()))
        names = [keys.events_stream(t) for t in tenants] + [keys.suppression_stream(t) for t in tenants]
        for name in names:
            if name not in self._grouped:
                try:
                    self.client.xgroup_create(name, GROUP, id="0", mkstream=True)
                except redis.ResponseError as exc:
                    if "BUSYGROUP" not in str(exc):
                        raise
                self._grouped.add(name)
        return names

    def maintain(self) -> list[str]:
        """Today's and tomorrow's partitions exist; partitions past ``keep_days`` are dropped."""
        with self.engine.begin() as connection:
            dropped = partitions.maintain(connection, self.keep_days)
        self._maintained_at = time.time()
        if dropped:
            log.info("archive_partitions_dropped", partitions=dropped)
        return dropped

    def run_once(self, block_ms: int | None = None) -> BatchReport:
        """Archive one batch: entries another consumer left pending first, then new ones."""
        names = self.streams()
        if not names:
            time.sleep((block_ms if block_ms is not None else self.block_ms) / 1000)
            return BatchReport()
        if time.time() - self._maintained_at > 3600:
            self.maintain()
        entries = self._claim(names)
        if not entries:
            entries = self._read(names, block_ms if block_ms is not None else self.block_ms)
            if entries and len(entries) < self.batch and self.linger_ms:
                # a trickle: wait a moment and take what came meanwhile, so a transaction (and its
                # commit) carries many entries instead of a few (costs up to linger_ms of lag)
                time.sleep(self.linger_ms / 1000)
                entries += self._read(names, None, self.batch - len(entries))
        if not entries:
            return BatchReport()
        report = self.write(entries)
        pipe = self.client.pipeline(transaction=False)
        by_stream: dict[str, list[str]] = {}
        for stream, entry_id, _ in entries:
            by_stream.setdefault(stream, []).append(entry_id)
        for stream, ids in by_stream.items():
            pipe.xack(stream, GROUP, *ids)
        self._expire_hot(pipe, report.finals)
        pipe.execute()
        if time.time() - self._trimmed_at >= 1.0:
            self.trim([s for s in by_stream if not s.endswith(":suppression-log")])
        return report

    def trim(self, streams: list[str]) -> None:
        """Trim events streams by age (``stream_max_age``), never past an entry the group has not
        committed: one still pending on a consumer, or not read yet. (With a database the status
        scripts leave the age trim to the archiver; the length cap stays theirs.)"""
        self._trimmed_at = time.time()
        cutoff = int((time.time() - self.stream_max_age) * 1000)
        pipe = self.client.pipeline(transaction=False)
        for stream in streams:
            pipe.xinfo_groups(stream)
            pipe.xpending(stream, GROUP)
        replies = pipe.execute(raise_on_error=False)
        trim = self.client.pipeline(transaction=False)
        for stream, groups, pending in zip(streams, replies[::2], replies[1::2], strict=True):
            if isinstance(groups, Exception) or isinstance(pending, Exception):
                continue
            keep_from = cutoff
            for group in groups:
                if _text(group["name"]) == GROUP:
                    keep_from = min(keep_from, _ms(group["last-delivered-id"]))
            if pending.get("pending") and pending.get("min"):
                keep_from = min(keep_from, _ms(pending["min"]))
            trim.xtrim(stream, minid=keep_from, approximate=True)
        trim.execute()

    def _expire_hot(self, pipe: Any, finals: list[tuple[str, str, float]]) -> None:
        """Final rows are committed: their hot hash and history may now expire, ``hot`` after the outcome.
        ``LT`` only ever shortens a TTL (the backstop), never lengthens one."""
        now = time.time()
        for tenant, event_id, final_at in finals:
            ttl = max(1, math.ceil(final_at + self.hot - now))
            pipe.expire(keys.event(tenant, event_id), ttl, lt=True)
            pipe.expire(keys.history(tenant, event_id), ttl, lt=True)

    def run(self, stop: threading.Event) -> None:
        self.maintain()
        while not stop.is_set():
            try:
                report = self.run_once()
            except (redis.ConnectionError, OSError) as exc:
                log.warning("archive_retry", error=type(exc).__name__)
                stop.wait(1.0)
                continue
            if report.entries:
                log.debug("archive_batch", entries=report.entries, events=report.events)

    def _claim(self, names: list[str]) -> list[tuple[str, str, dict[str, str]]]:
        """Entries pending on a consumer that stopped (killed mid-batch) for longer than claim_idle_ms."""
        out: list[tuple[str, str, dict[str, str]]] = []
        for name in names:
            answer = self.client.xautoclaim(name, GROUP, self.consumer, self.claim_idle_ms, "0-0", count=self.batch)
            for entry_id, fields in answer[1]:
                if fields:  # an entry trimmed away while pending comes back empty
                    out.append((name, _text(entry_id), {_text(k): _text(v) for k, v in fields.items()}))
                else:
                    self.client.xack(name, GROUP, entry_id)
            if len(out) >= self.batch:
                break
        return out

    def _read(self, names: list[str], block_ms: int | None, count: int | None = None) -> list[tuple[str, str, dict[str, str]]]:
        streams: dict[Any, Any] = dict.fromkeys(names, ">")
        answer: Any = self.client.xreadgroup(GROUP, self.consumer, streams, count=count or self.batch, block=block_ms)
        out = []
        for name, items in answer or []:
            for entry_id, fields in items:
                out.append((_text(name), _text(entry_id), {_text(k): _text(v) for k, v in fields.items()}))
        return out

    def write(self, entries: Iterable[tuple[str, str, dict[str, str]]]) -> BatchReport:
        """Write one batch in one transaction (history, event rows, suppressions)."""
        report = BatchReport()
        rows: dict[tuple[str, str], _EventRow] = {}
        history: list[dict[str, Any]] = []
        suppressions: list[dict[str, Any]] = []
        days: set[dt.date] = set()
        times: list[float] = []
        for stream, entry_id, fields in entries:
            report.entries += 1
            if stream.endswith(":suppression-log"):
                suppressions.append(self._suppression(fields))
                continue
            tenant, event_id, state = fields["tenant"], fields["event_id"], fields["state"]
            entry = json.loads(fields.get("entry") or "{}")
            if not entry.get("at"):
                entry["at"] = int(entry_id.split("-")[0]) / 1000
            at = float(entry["at"])
            created = float(fields.get("created") or at)
            row = rows.setdefault((tenant, event_id), _EventRow(tenant, event_id, created))
            row.apply(state, fields.get("final") == "1", entry)
            history.append(
                {
                    "tenant": tenant,
                    "stream_id": entry_id,
                    "at": _iso(at),
                    "event_id": event_id,
                    "state": state,
                    "entry": entry,
                }
            )
            days.update((_time(at).date(), _time(created).date()))
            times.append(at)
        events = self._event_rows(rows)
        report.events, report.suppressions = len(events), len(suppressions)
        with self.engine.begin() as connection:
            if days - self._days:
                partitions.ensure_days(connection, days - self._days)
                self._days |= days
            cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
            if history:
                cursor.execute(_INSERT_HISTORY, {"rows": json.dumps(history)})
            if events:
                cursor.execute(_UPSERT_EVENT, {"rows": json.dumps(events)})
            if suppressions:
                cursor.executemany(_INSERT_SUPPRESSION, suppressions)
        committed = time.time()
        report.lag = [committed - at for at in times]
        report.finals = [(r.tenant, r.event_id, r.final_at) for r in rows.values() if r.final_at is not None]
        return report

    def _event_rows(self, rows: dict[tuple[str, str], _EventRow]) -> list[dict[str, Any]]:
        """Rows for the upsert; the lead event itself is read from Redis for those accepted in this batch."""
        accepted = [row for row in rows.values() if row.accepted]
        pipe = self.client.pipeline(transaction=False)
        for row in accepted:
            pipe.hget(keys.event(row.tenant, row.event_id), "event")
        lead = {(r.tenant, r.event_id): json.loads(v) for r, v in zip(accepted, pipe.execute(), strict=True) if v}
        out = []
        for key, row in rows.items():
            event: dict[str, Any] = lead.get(key) or {}
            out.append(
                {
                    "tenant": row.tenant,
                    "event_id": row.event_id,
                    "created_at": _iso(row.created),
                    "updated_at": _iso(row.updated or row.created),
                    "final_at": _iso(row.final_at) if row.final_at else None,
                    "state": row.state,
                    "outcome": row.outcome,
                    "campaign": event.get("campaign"),
                    "list": event.get("list"),
                    "sender": event.get("sender") or row.sender,
                    "recipient": str(event["to"]).lower() if event.get("to") else None,
                    "account": row.account,
                    "route": row.route,
                    "reason": row.reason,
                    "last_reply": row.last_reply,
                    "attempts": row.attempts,
                    "message_id": row.message_id,
                    "retry_of": event.get("retry_of") or (event.get("metadata") or {}).get("retry_of"),
                    "metadata": event.get("metadata") or None,
                    "event": event or None,
                }
            )
        return out

    @staticmethod
    def _suppression(fields: dict[str, str]) -> dict[str, Any]:
        return {
            "tenant": fields["tenant"],
            "address": fields["address"],
            "scope": fields.get("scope") or TENANT_WIDE,
            "reason": suppression_reason(fields.get("reason", "")),
            "detail": fields.get("reason"),
            "source": fields.get("source") or "worker",
            "created_at": _time(float(fields.get("at") or time.time())),
        }
