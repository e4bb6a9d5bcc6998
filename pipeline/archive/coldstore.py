"""Reads from the delivery log for the hot path's rare misses: an event or a Message-ID Redis let go."""

from __future__ import annotations

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
