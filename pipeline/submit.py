"""Accept lead events: validate, record as accepted (idempotent on event_id), enqueue to render."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import dramatiq
import redis

from pipeline.config import Config
from pipeline.errors import InvalidEvent
from pipeline.models import LeadEvent, parse_event
from pipeline.runtime.enqueue import Enqueuer
from pipeline.state.status import StatusStore

ACCEPT_CHUNK = 500


@dataclass
class ItemError:
    index: int
    errors: list[str]
    event_id: str | None = None


@dataclass
class SubmitReport:
    accepted: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    errors: list[ItemError] = field(default_factory=list)

    def merge(self, other: SubmitReport) -> None:
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.errors += other.errors


class Submitter:
    """The Python API for upstream systems; the CLI and HTTP ingest use it too."""

    def __init__(self, config: Config, broker: dramatiq.Broker | None = None, client: redis.Redis | None = None) -> None:
        if broker is None:
            from pipeline.runtime.broker import make_broker

            broker = make_broker(config.broker)
        self.enqueuer = Enqueuer(broker)
        self.status = StatusStore(client or redis.Redis.from_url(config.redis_url))

    def submit(self, events: Iterable[LeadEvent | dict[str, Any] | str], *, source: str = "api") -> SubmitReport:
        report = SubmitReport()
        chunk: list[LeadEvent] = []
        for index, raw in enumerate(events):
            try:
                event = raw if isinstance(raw, LeadEvent) else parse_event(raw)
            except InvalidEvent as exc:
                report.errors.append(ItemError(index, exc.errors, _event_id_of(raw)))
                named = raw.get("tenant") if isinstance(raw, dict) else None
                tenant = named if isinstance(named, str) and named.isidentifier() else "default"
                self.status.refuse_input(tenant, str(raw), exc.errors, source)
                continue
            chunk.append(event)
            if len(chunk) >= ACCEPT_CHUNK:
                report.merge(self._accept(chunk))
                chunk = []
        if chunk:
            report.merge(self._accept(chunk))
        return report

    def _accept(self, events: list[LeadEvent]) -> SubmitReport:
        unique: dict[tuple[str, str], LeadEvent] = {}
        report = SubmitReport()
        for event in events:
            if (event.tenant, event.event_id) in unique:
                report.duplicates.append(event.event_id)
            else:
                unique[(event.tenant, event.event_id)] = event
        batch = list(unique.values())
        verdicts = self.status.accept(batch)
        fresh = [e for e, ok in zip(batch, verdicts, strict=True) if ok]
        report.duplicates += [e.event_id for e, ok in zip(batch, verdicts, strict=True) if not ok]
        try:
            for start in range(0, len(fresh), self.enqueuer.batch_size):
                part = fresh[start : start + self.enqueuer.batch_size]
                self.enqueuer.send("render", [e.to_json() for e in part])
        except Exception:
            self.status.forget(fresh[start:])
            raise
        report.accepted += [e.event_id for e in fresh]
        return report


def _event_id_of(raw: object) -> str | None:
    found = raw.get("event_id") if isinstance(raw, dict) else None
    return found[:200] if isinstance(found, str) else None


def read_jsonl(lines: Iterable[str]) -> Iterator[str]:
    for line in lines:
        if line.strip():
            yield line
