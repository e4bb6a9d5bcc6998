"""Delivery log (events and their history, partitioned by day) and per-tenant suppression lists.

Revision ID: 0002
Revises: 0001

The partitions themselves are created and dropped at run time by ``pipeline/archive/partitions.py``
(a day ahead, and ``[retention] delivery_log`` days back).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

REASONS = ("unsubscribe", "hard_bounce", "complaint", "manual", "import")


def upgrade() -> None:
    op.create_table(
        "delivery_events",
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("final_at", sa.DateTime(timezone=True)),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("outcome", sa.String(32)),
        sa.Column("campaign", sa.String(200)),
        sa.Column("list", sa.String(200)),
        sa.Column("sender", sa.String(320)),
        sa.Column("recipient", sa.String(320)),
        sa.Column("account", sa.String(64)),
        sa.Column("route", sa.String(64)),
        sa.Column("reason", sa.String(64)),
        sa.Column("last_reply", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("message_id", sa.String(300)),
        sa.Column("retry_of", sa.String(200)),
        sa.Column("metadata", JSONB),
        sa.Column("event", JSONB),
        sa.PrimaryKeyConstraint("tenant", "event_id", "created_at", name="pk_delivery_events"),
        postgresql_partition_by="RANGE (created_at)",
    )
    op.create_index("ix_delivery_events_tenant_created", "delivery_events", ["tenant", "created_at", "event_id"])
    op.create_index("ix_delivery_events_tenant_campaign_created", "delivery_events", ["tenant", "campaign", "created_at"])
    op.create_index("ix_delivery_events_tenant_recipient", "delivery_events", ["tenant", "recipient"])
    op.create_index("ix_delivery_events_message_id", "delivery_events", ["message_id"])
    op.create_index("ix_delivery_events_tenant_retry_of", "delivery_events", ["tenant", "retry_of"])
    op.create_table(
        "delivery_history",
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("stream_id", sa.String(40), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("entry", JSONB, nullable=False),
        sa.PrimaryKeyConstraint("tenant", "stream_id", "at", name="pk_delivery_history"),
        postgresql_partition_by="RANGE (at)",
    )
    op.create_index("ix_delivery_history_tenant_event", "delivery_history", ["tenant", "event_id"])
    op.create_table(
        "suppressions",
        sa.Column("id", sa.Integer, sa.Identity(), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("scope", sa.String(200), nullable=False, server_default=""),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("detail", sa.String(200)),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name="pk_suppressions"),
        sa.UniqueConstraint("tenant", "address", "scope", name="uq_suppressions_tenant_address_scope"),
        sa.CheckConstraint(f"reason IN {REASONS!r}", name="ck_suppressions_reason"),
    )
    op.create_index("ix_suppressions_tenant_created", "suppressions", ["tenant", "created_at", "id"])


def downgrade() -> None:
    op.drop_table("suppressions")
    op.drop_table("delivery_history")  # drops its partitions with it
    op.drop_table("delivery_events")
