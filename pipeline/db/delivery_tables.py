"""The delivery log (one row per event, one row per transition) and the suppression lists.

Both delivery tables are range-partitioned by day (``pipeline/archive/partitions.py`` creates and
drops the partitions), so ``[retention] delivery_log`` drops whole partitions instead of deleting
rows. A partitioned table's primary key must hold the partition column, hence ``created_at`` / ``at``
in the keys.

These tables name the tenant by its slug, as Redis does: workers write them from the events stream
knowing only the slug, and the TOML's ``default`` tenant may have no row in ``tenants``. Every query
still filters on the slug of a resolved ``TenantScope`` first.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, Index, Integer, String, Text, UniqueConstraint, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from pipeline.db.tables import Base

SUPPRESSION_REASONS = ("unsubscribe", "hard_bounce", "complaint", "manual", "import")
TENANT_WIDE = ""  # the scope of a suppression that covers all of a tenant's mail (else: one list's name)


class DeliveryEvent(Base):
    __tablename__ = "delivery_events"
    __table_args__ = (
        Index("ix_delivery_events_tenant_created", "tenant", "created_at", "event_id"),
        Index("ix_delivery_events_tenant_campaign_created", "tenant", "campaign", "created_at"),
        Index("ix_delivery_events_tenant_recipient", "tenant", "recipient"),
        Index("ix_delivery_events_message_id", "message_id"),
        Index("ix_delivery_events_tenant_retry_of", "tenant", "retry_of"),
        {"postgresql_partition_by": "RANGE (created_at)"},
    )

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    final_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    state: Mapped[str] = mapped_column(String(32), nullable=False)
    outcome: Mapped[str | None] = mapped_column(String(32))
    campaign: Mapped[str | None] = mapped_column(String(200))
    list: Mapped[str | None] = mapped_column(String(200))
    sender: Mapped[str | None] = mapped_column(String(320))
    recipient: Mapped[str | None] = mapped_column(String(320))
    account: Mapped[str | None] = mapped_column(String(64))
    route: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(String(64))
    last_reply: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    message_id: Mapped[str | None] = mapped_column(String(300))
    retry_of: Mapped[str | None] = mapped_column(String(200))
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONB)
    event: Mapped[dict[str, Any] | None] = mapped_column(JSONB)  # the lead event as accepted, for retries

    def __repr__(self) -> str:
        return f"DeliveryEvent(tenant={self.tenant!r}, event_id={self.event_id!r}, state={self.state!r})"


class DeliveryHistory(Base):
    """One transition; ``stream_id`` (the events stream entry id) makes a replayed entry a no-op."""

    __tablename__ = "delivery_history"
    __table_args__ = (
        Index("ix_delivery_history_tenant_event", "tenant", "event_id"),
        {"postgresql_partition_by": "RANGE (at)"},
    )

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    stream_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(200), nullable=False)
    state: Mapped[str] = mapped_column(String(32), nullable=False)
    entry: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)

    def __repr__(self) -> str:
        return f"DeliveryHistory(tenant={self.tenant!r}, event_id={self.event_id!r}, state={self.state!r})"


class Suppression(Base):
    __tablename__ = "suppressions"
    __table_args__ = (
        UniqueConstraint("tenant", "address", "scope", name="uq_suppressions_tenant_address_scope"),
        CheckConstraint(f"reason IN {SUPPRESSION_REASONS!r}", name="reason"),
        Index("ix_suppressions_tenant_created", "tenant", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(64), nullable=False)
    address: Mapped[str] = mapped_column(String(320), nullable=False)
    scope: Mapped[str] = mapped_column(String(200), nullable=False, server_default="")
    reason: Mapped[str] = mapped_column(String(16), nullable=False)
    detail: Mapped[str | None] = mapped_column(String(200))  # e.g. the bounce reason user_unknown
    source: Mapped[str] = mapped_column(String(100), nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    def __repr__(self) -> str:
        return f"Suppression(tenant={self.tenant!r}, scope={self.scope!r}, reason={self.reason!r})"
