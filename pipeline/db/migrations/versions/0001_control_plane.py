"""Control plane: tenants, their data keys, SMTP accounts, routes, API keys and the audit log.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _timestamps() -> list[sa.Column[dt.datetime]]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    ]


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("slug", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(200)),
        sa.Column("version", sa.BigInteger, nullable=False, server_default=sa.text("1")),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_tenants"),
        sa.UniqueConstraint("slug", name="uq_tenants_slug"),
    )
    op.create_table(
        "tenant_data_keys",
        sa.Column("tenant_id", sa.BigInteger, nullable=False),
        sa.Column("master_key_id", sa.String(32), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("rotated_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("tenant_id", name="pk_tenant_data_keys"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE", name="fk_tenant_data_keys_tenant_id_tenants"),
    )
    op.create_index("ix_tenant_data_keys_master_key_id", "tenant_data_keys", ["master_key_id"])
    op.create_table(
        "smtp_accounts",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("tenant_id", sa.BigInteger, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("host", sa.String(253)),
        sa.Column("port", sa.Integer),
        sa.Column("security", sa.String(16)),
        sa.Column("region", sa.String(32)),
        sa.Column("username", sa.String(320)),
        sa.Column("auth_method", sa.String(32)),
        sa.Column("from_email", sa.String(320), nullable=False),
        sa.Column("from_name", sa.String(200)),
        sa.Column("reply_to", sa.String(320)),
        sa.Column("envelope_from", sa.String(320)),
        sa.Column("description", sa.Text),
        sa.Column("limits", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("imap", JSONB),
        sa.Column("reply_tracking", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("default_for", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("status", sa.String(16), nullable=False, server_default=sa.text("'active'")),
        sa.Column("status_reason", sa.Text),
        sa.Column("is_default", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("managed_by_file", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("secret", sa.LargeBinary),
        sa.Column("password_set", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("verified_at", sa.DateTime(timezone=True)),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_smtp_accounts"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE", name="fk_smtp_accounts_tenant_id_tenants"),
        sa.UniqueConstraint("tenant_id", "name", name="uq_smtp_accounts_tenant_name"),
        sa.CheckConstraint("status IN ('active', 'paused', 'auth_failed')", name="ck_smtp_accounts_status"),
    )
    op.create_index(
        "uq_smtp_accounts_one_default", "smtp_accounts", ["tenant_id"], unique=True, postgresql_where=sa.text("is_default")
    )
    op.create_table(
        "routes",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("tenant_id", sa.BigInteger, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("name", sa.String(64)),
        sa.Column("match", JSONB, nullable=False),
        sa.Column("accounts", JSONB, nullable=False),
        sa.Column("strategy", sa.String(32), nullable=False),
        sa.Column("tracking_domain", sa.String(260)),
        sa.Column("managed_by_file", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.PrimaryKeyConstraint("id", name="pk_routes"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE", name="fk_routes_tenant_id_tenants"),
        sa.UniqueConstraint("tenant_id", "position", name="uq_routes_tenant_position"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("tenant_id", sa.BigInteger, nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("prefix", sa.String(32), nullable=False),
        sa.Column("key_hash", sa.LargeBinary, nullable=False),
        sa.Column("name", sa.String(200)),
        sa.Column("scopes", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("last_used_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE", name="fk_api_keys_tenant_id_tenants"),
        sa.UniqueConstraint("key_id", name="uq_api_keys_key_id"),
    )
    op.create_index("ix_api_keys_tenant_id", "api_keys", ["tenant_id"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("tenant_id", sa.BigInteger, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(200)),
        sa.Column("before", JSONB),
        sa.Column("after", JSONB),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_tenant_id_id", "audit_log", ["tenant_id", "id"])


def downgrade() -> None:
    for table in ("audit_log", "api_keys", "routes", "smtp_accounts", "tenant_data_keys", "tenants"):
        op.drop_table(table)
