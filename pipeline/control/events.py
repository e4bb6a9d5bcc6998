"""The delivery log from the API and the CLI: filtered listing (keyset pages), CSV export, retry of what failed.

Every function takes the tenant's slug from a resolved ``TenantScope``; nothing reads another
tenant's rows. Export streams ``COPY … TO STDOUT`` in chunks, so its memory does not grow with size.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from pipeline.control.errors import ControlError

FAILED_OUTCOMES = ("failed", "bounced", "rejected")
COLUMNS = (
    "event_id",
    "created_at",
    "final_at",
    "state",
    "outcome",
    "campaign",
    "list",
    "sender",
    "recipient",
    "account",
    "route",
    "reason",
    "last_reply",
    "attempts",
    "message_id",
    "retry_of",
)
MAX_PAGE = 1000


class BadFilter(ControlError):
    status = 422


@dataclass(frozen=True)
class EventFilter:
    campaign: str | None = None
    list: str | None = None
    sender: str | None = None
    account: str | None = None
    outcome: str | None = None
    reason: str | None = None
    to: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def where(self, tenant: str) -> tuple[str, dict[str, Any]]:
        clauses: list[str] = ["tenant = %(tenant)s"]
        params: dict[str, Any] = {"tenant": tenant}
        for name in ("campaign", "list", "sender", "account", "outcome", "reason"):
            value = getattr(self, name)
            if value is not None:
                clauses.append(f'"{name}" = %({name})s')
                params[name] = value
        if self.to is not None:
            clauses.append("recipient = %(to)s")
            params["to"] = self.to.strip().lower()
        if self.since is not None:
            clauses.append("created_at >= %(since)s")
            params["since"] = self.since
        if self.until is not None:
            clauses.append("created_at < %(until)s")
            params["until"] = self.until
        return " AND ".join(clauses), params


@dataclass
class Page:
    events: list[dict[str, Any]]
    next_cursor: str | None


def _cursor(created: dt.datetime, event_id: str) -> str:
    return base64.urlsafe_b64encode(f"{created.isoformat()}|{event_id}".encode()).decode()


def _uncursor(cursor: str) -> tuple[dt.datetime, str]:
    try:
        created, event_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        return dt.datetime.fromisoformat(created), event_id
    except (ValueError, UnicodeDecodeError):
        raise BadFilter("cursor: not a cursor this API returned") from None


def listing(engine: Engine, tenant: str, filters: EventFilter, *, limit: int = 100, cursor: str | None = None) -> Page:
    """Oldest first by (created_at, event_id): a keyset page, an index range scan inside the tenant."""
    if not 1 <= limit <= MAX_PAGE:
        raise BadFilter(f"limit: between 1 and {MAX_PAGE}")
    where, params = filters.where(tenant)
    if cursor:
        params["after_created"], params["after_id"] = _uncursor(cursor)
        where += " AND (created_at, event_id) > (%(after_created)s, %(after_id)s)"
    sql = f"SELECT {', '.join(f'{c!r}'.replace(chr(39), chr(34)) for c in COLUMNS)} FROM delivery_events WHERE {where}"
    sql += f" ORDER BY created_at, event_id LIMIT {limit + 1}"
    with engine.connect() as connection:
        cur = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        cur.execute(sql, params)
        rows = [dict(zip(COLUMNS, r, strict=True)) for r in cur.fetchall()]
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, _cursor(rows[-1]["created_at"], rows[-1]["event_id"]) if more and rows else None)


EXPORT_CHUNK = 256 * 1024


def export_csv(engine: Engine, tenant: str, filters: EventFilter) -> Iterator[bytes]:
    """The filtered delivery log as CSV (header first), streamed from ``COPY … TO STDOUT`` in chunks."""
    where, params = filters.where(tenant)
    columns = ", ".join(f'"{c}"' for c in COLUMNS)
    with engine.connect() as connection:
        raw: Any = connection.connection.driver_connection
        cur = raw.cursor()
        query, args = (  # psycopg binds COPY's parameters client-side
            f"COPY (SELECT {columns} FROM delivery_events WHERE {where} ORDER BY created_at, event_id)"
            " TO STDOUT WITH (FORMAT csv, HEADER)",
            params,
        )
        with cur.copy(query, args) as copy:
            # libpq hands COPY TO data over one row at a time: gathered into large chunks here, so a
            # consumer (an HTTP response, a file, a progress bar) pays its per-chunk cost per 256 KiB
            buffer = bytearray()
            for row in copy:
                buffer += row
                if len(buffer) >= EXPORT_CHUNK:
                    yield bytes(buffer)
                    buffer.clear()
            if buffer:
                yield bytes(buffer)


def retry_event_id(original: str) -> str:
    """Deterministic, so running the same retry twice resubmits the same id and the dedupe stops it."""
    return f"retry-{hashlib.sha256(original.encode()).hexdigest()[:24]}"


@dataclass
class RetryPlan:
    resubmit: list[dict[str, Any]] = field(default_factory=list)  # the new lead events
    skipped_suppressed: int = 0
    skipped_already_retried: int = 0
    skipped_no_event: int = 0


def plan_retry(engine: Engine, tenant: str, filters: EventFilter, *, limit: int = 100_000) -> RetryPlan:
    """What a retry would send: failed events (outcome failed unless the filter names one), minus suppressed
    and hard-bounced recipients (counted), each as a new event linked by ``metadata.retry_of``."""
    chosen = filters if filters.outcome else EventFilter(**{**filters.__dict__, "outcome": "failed"})
    if chosen.outcome not in FAILED_OUTCOMES:
        raise BadFilter(f"outcome: only failed mail is retried ({', '.join(FAILED_OUTCOMES)})")
    where, params = chosen.where(tenant)
    sql = (
        "SELECT e.event_id, e.recipient, e.list, e.event, "
        "EXISTS (SELECT 1 FROM suppressions s WHERE s.tenant = e.tenant AND s.address = e.recipient "
        "AND (s.scope = '' OR s.scope = e.list)) AS suppressed, "
        "(e.outcome = 'bounced' AND e.reason IN ('user_unknown','host_unknown','has_moved','not_accept')) AS hard, "
        "EXISTS (SELECT 1 FROM delivery_events r WHERE r.tenant = e.tenant AND r.retry_of = e.event_id) AS retried "
        f"FROM delivery_events e WHERE {where.replace('tenant =', 'e.tenant =')} ORDER BY created_at, event_id LIMIT {limit}"
    )
    plan = RetryPlan()
    with engine.connect() as connection:
        cur = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        cur.execute(sql, params)
        for event_id, _recipient, _list, event, suppressed, hard, retried in cur.fetchall():
            if retried:
                plan.skipped_already_retried += 1
            elif suppressed or hard:
                plan.skipped_suppressed += 1
            elif not event:
                plan.skipped_no_event += 1
            else:
                metadata = {**(event.get("metadata") or {}), "retry_of": event_id}
                plan.resubmit.append({**event, "event_id": retry_event_id(event_id), "metadata": metadata})
    return plan
