"""Accept lead events: validate, record as accepted (idempotent on event_id), enqueue to render.

`Intake` is what every way in does (`pipeline.Client`, `mailpipe submit`, `POST /v1/events`);
`Submitter` is an intake for a loaded config. Neither touches Dramatiq's global broker or encoder.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import dramatiq
import redis

from pipeline.errors import InvalidEvent
from pipeline.models import LeadEvent, parse_event
from pipeline.runtime.enqueue import Enqueuer
from pipeline.state.status import StatusStore

if TYPE_CHECKING:
    from pipeline.config import Config

ACCEPT_CHUNK = 500


@dataclass
class ItemError:
    """A refused event: its position in what was submitted, what is wrong with it, its event_id if it had one."""

    index: int
    errors: list[str]
    event_id: str | None = None


@dataclass
class SubmitReport:
    """Event ids accepted now, event ids already known (never sent twice), events refused."""

    accepted: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    errors: list[ItemError] = field(default_factory=list)

    def merge(self, other: SubmitReport) -> None:
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.errors += other.errors


class Intake:
    """Validate, record as accepted (idempotent on event_id), enqueue to render."""

    def __init__(self, enqueuer: Enqueuer, status: StatusStore) -> None:
        self.enqueuer = enqueuer
        self.status = status

    def submit(self, events: Iterable[LeadEvent | Mapping[str, Any] | str], *, source: str = "api") -> SubmitReport:
        report = SubmitReport()
        chunk: list[LeadEvent] = []
        for index, raw in enumerate(events):
            try:
                event = raw if isinstance(raw, LeadEvent) else parse_event(dict(raw) if isinstance(raw, Mapping) else raw)
            except InvalidEvent as exc:
                report.errors.append(ItemError(index, exc.errors, _event_id_of(raw)))
                self.status.refuse_input(_tenant_of(raw), str(raw), exc.errors, source)
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


class Submitter(Intake):
    """An intake for a loaded config: the CLI, HTTP ingest and the demo use it. Its broker is its own
    (`broker_for`), so the process's Dramatiq broker and encoder stay as they were. Upstream code
    uses `pipeline.Client`, which needs no account secrets."""

    def __init__(self, config: Config, broker: dramatiq.Broker | None = None, client: redis.Redis | None = None) -> None:
        from pipeline.archive.stores import reader_for, retention_of

        if broker is None:
            from pipeline.runtime.broker import broker_for

            broker = broker_for(config.broker)
        # with [database] url, event_ids final beyond the hot window are found in the delivery log
        store = StatusStore(
            client or redis.Redis.from_url(config.redis_url), retention=retention_of(config), cold=reader_for(config)
        )
        super().__init__(Enqueuer(broker), store)


def _event_id_of(raw: object) -> str | None:
    event_id = raw.get("event_id") if isinstance(raw, Mapping) else None
    return event_id[:200] if isinstance(event_id, str) else None


def _tenant_of(raw: object) -> str:
    tenant = raw.get("tenant") if isinstance(raw, Mapping) else None
    return tenant if isinstance(tenant, str) and tenant.isidentifier() else "default"


def read_jsonl(lines: Iterable[str]) -> Iterator[str]:
    for line in lines:
        if line.strip():
            yield line
