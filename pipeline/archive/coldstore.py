"""Reads from the delivery log for the hot path's rare misses: an event or a Message-ID Redis let go."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import Engine, text

from pipeline.inbox.index import EventRef
from pipeline.state.status import EventStatus

_EVENT = text(
    "SELECT tenant, event_id, state, outcome, created_at, updated_at, event FROM delivery_events "
    "WHERE tenant = :tenant AND event_id = :event_id ORDER BY created_at DESC LIMIT 1"
)
_HISTORY = text("SELECT entry FROM delivery_history WHERE tenant = :tenant AND event_id = :event_id ORDER BY at, stream_id")
_BY_MESSAGE_ID = text(
    "SELECT tenant, event_id, message_id FROM delivery_events WHERE message_id = ANY(:ids) ORDER BY created_at DESC"
)

# The primary key (tenant, event_id, created_at) of each daily partition answers this; partitions
# older than `since` are pruned. Only final rows count: an event still in flight is Redis's to
# decide (its hash has no TTL then), and one lost with Redis must be accepted again to be sent.
_KNOWN = text(
    "SELECT tenant, event_id FROM delivery_events "
    "WHERE tenant = ANY(:tenants) AND event_id = ANY(:ids) AND created_at >= :since AND outcome IS NOT NULL"
)


class DeliveryLogReader:
    """``ColdStatus`` and ``ColdMessages`` over PostgreSQL (indexed lookups only)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def status(self, tenant: str, event_id: str) -> EventStatus | None:
        with self.engine.connect() as connection:
            row = connection.execute(_EVENT, {"tenant": tenant, "event_id": event_id}).first()
            if row is None:
                return None
            history = [r[0] for r in connection.execute(_HISTORY, {"tenant": tenant, "event_id": event_id})]
        event: dict[str, Any] | None = (
            row.event if isinstance(row.event, dict) else (json.loads(row.event) if row.event else None)
        )
        return EventStatus(
            event_id=row.event_id,
            tenant=row.tenant,
            state=row.state,
            outcome=row.outcome,
            created=row.created_at.timestamp(),
            updated=row.updated_at.timestamp(),
            history=history,
            event=event,
        )

    def known(self, pairs: list[tuple[str, str]], since: float) -> set[tuple[str, str]]:
        """Which (tenant, event_id) have a final row created at ``since`` or later: one query per batch."""
        if not pairs:
            return set()
        wanted = set(pairs)
        params = {
            "tenants": sorted({t for t, _ in wanted}),
            "ids": sorted({e for _, e in wanted}),
            "since": dt.datetime.fromtimestamp(since, dt.UTC),
        }
        with self.engine.connect() as connection:
            rows = connection.execute(_KNOWN, params).all()
        return {(r.tenant, r.event_id) for r in rows} & wanted

    def find_message(self, message_ids: list[str], tenants: list[str] | None) -> EventRef | None:
        if not message_ids:
            return None
        with self.engine.connect() as connection:
            rows = connection.execute(_BY_MESSAGE_ID, {"ids": message_ids}).all()
        for message_id in message_ids:  # the caller's order of preference
            for row in rows:
                if row.message_id == message_id and (tenants is None or row.tenant in tenants):
                    return EventRef(row.tenant, row.event_id, message_id)
        return None
