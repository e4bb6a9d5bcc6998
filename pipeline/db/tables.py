"""The control plane's tables (SQLAlchemy 2 typed mappings). Migrations in ``migrations/`` create them.

Everything a tenant owns carries ``tenant_id`` and is indexed by it first, so every lookup a
request makes is an index probe inside one tenant, never a scan over all of them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Stable constraint names, so hand-written migrations can refer to them.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ACCOUNT_STATUSES = ("active", "paused", "auth_failed")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _now() -> Any:
    return mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    slug: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    # Bumped on every change to the tenant's accounts or routes: workers compare it to their snapshot.
    version: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("1"))
    created_at: Mapped[dt.datetime] = _now()
    updated_at: Mapped[dt.datetime] = _now()

    def __repr__(self) -> str:
        return f"Tenant(id={self.id!r}, slug={self.slug!r})"


class TenantDataKey(Base):
    """The tenant's data key, wrapped by a master key. Deleting the tenant deletes it (cascade)."""

    __tablename__ = "tenant_data_keys"

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    master_key_id: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    created_at: Mapped[dt.datetime] = _now()
    rotated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    def __repr__(self) -> str:
        return f"TenantDataKey(tenant_id={self.tenant_id!r}, master_key_id={self.master_key_id!r})"


class SmtpAccount(Base):
    __tablename__ = "smtp_accounts"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name", name="uq_smtp_accounts_tenant_name"),
        CheckConstraint(f"status IN {ACCOUNT_STATUSES!r}", name="status"),
        # "Set as active": at most one default account per tenant, enforced by the database.
        Index("uq_smtp_accounts_one_default", "tenant_id", unique=True, postgresql_where=text("is_default")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(64), nullable=False)
    provider: Mapped[str] = mapped_column(String(64), nullable=False)
    host: Mapped[str | None] = mapped_column(String(253))
    port: Mapped[int | None] = mapped_column(Integer)
    security: Mapped[str | None] = mapped_column(String(16))
    region: Mapped[str | None] = mapped_column(String(32))
    username: Mapped[str | None] = mapped_column(String(320))
    auth_method: Mapped[str | None] = mapped_column(String(32))
    from_email: Mapped[str] = mapped_column(String(320), nullable=False)
    from_name: Mapped[str | None] = mapped_column(String(200))
    reply_to: Mapped[str | None] = mapped_column(String(320))
    envelope_from: Mapped[str | None] = mapped_column(String(320))
    description: Mapped[str | None] = mapped_column(Text)
    limits: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    imap: Mapped[dict[str, Any] | None] = mapped_column(JSONB)  # host/port/security/username/folder; its password is in secret
    reply_tracking: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    default_for: Mapped[list[str]] = mapped_column(JSONB, nullable=False, server_default=text("'[]'::jsonb"))
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default=text("'active'"))
    status_reason: Mapped[str | None] = mapped_column(Text)
    is_default: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    managed_by_file: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    # AES-GCM ciphertext of the account's secrets (SMTP and IMAP passwords) under the tenant's data key.
    secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    password_set: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    verified_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = _now()
    updated_at: Mapped[dt.datetime] = _now()

    def __repr__(self) -> str:  # never the secret
        return f"SmtpAccount(tenant_id={self.tenant_id!r}, name={self.name!r}, provider={self.provider!r})"


class Route(Base):
    __tablename__ = "routes"
    __table_args__ = (UniqueConstraint("tenant_id", "position", name="uq_routes_tenant_position"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    name: Mapped[str | None] = mapped_column(String(64))
    match: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    accounts: Mapped[list[str]] = mapped_column(JSONB, nullable=False)
    strategy: Mapped[str] = mapped_column(String(32), nullable=False)
    tracking_domain: Mapped[str | None] = mapped_column(String(260))
    managed_by_file: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))

    def __repr__(self) -> str:
        return f"Route(tenant_id={self.tenant_id!r}, position={self.position!r})"


class ApiKey(Base):
    """A tenant key: only its SHA-256 is stored (keys are 256-bit random, so no slow hash is needed)."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False, index=True)
    key_id: Mapped[str] = mapped_column(String(32), nullable=False, unique=True)  # public: shown in lists and audit
    prefix: Mapped[str] = mapped_column(String(32), nullable=False)  # "mp_live_<key_id>", for scanners and humans
    key_hash: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    name: Mapped[str | None] = mapped_column(String(200))
    scopes: Mapped[list[str]] = mapped_column(JSONB, nullable=False)
    created_at: Mapped[dt.datetime] = _now()
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    def __repr__(self) -> str:
        return f"ApiKey(key_id={self.key_id!r}, tenant_id={self.tenant_id!r})"


class AuditEntry(Base):
    """Who changed what in a tenant, with before/after (secrets appear only as "changed").

    No foreign key: the trail of a deleted tenant outlives it.
    """

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_tenant_id_id", "tenant_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    at: Mapped[dt.datetime] = _now()
    actor: Mapped[str] = mapped_column(String(100), nullable=False)
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    target: Mapped[str | None] = mapped_column(String(200))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONB)

    def __repr__(self) -> str:
        return f"AuditEntry(id={self.id!r}, action={self.action!r})"
