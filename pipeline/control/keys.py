"""Tenant API keys: shown once (``mp_live_<id>_<secret>``, a prefix scanners can find), stored as a hash, revocable."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from pipeline.control import audit
from pipeline.control.context import ControlContext
from pipeline.control.errors import NotFound
from pipeline.control.schemas import KeyCreated, KeyIn, KeyList, KeyOut
from pipeline.control.scope import Principal, TenantScope
from pipeline.db.tables import ApiKey, Tenant

PREFIX = "mp_live_"
KEY_SHAPE = re.compile(r"^mp_live_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$")
TOUCH_EVERY = dt.timedelta(minutes=5)


def looks_like_key(token: str) -> bool:
    return token.startswith(PREFIX)


def _hash(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def _out(row: ApiKey) -> KeyOut:
    return KeyOut(
        key_id=row.key_id,
        prefix=row.prefix,
        name=row.name,
        scopes=list(row.scopes),
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


def create_key(ctx: ControlContext, scope: TenantScope, data: KeyIn) -> KeyCreated:
    scope.principal.require_admin()
    key_id = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(12))
    key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    with ctx.transaction() as session:
        row = ApiKey(
            tenant_id=scope.tenant_id,
            key_id=key_id,
            prefix=f"{PREFIX}{key_id}",
            key_hash=_hash(key),
            name=data.name,
            scopes=list(data.scopes),
        )
        session.add(row)
        session.flush()
        session.refresh(row)
        audit.record(session, scope, "key.create", key_id, after={"name": data.name, "scopes": list(data.scopes)})
        return KeyCreated(key=key, **_out(row).model_dump())


def list_keys(ctx: ControlContext, scope: TenantScope) -> KeyList:
    scope.principal.require_admin()
    with ctx.transaction() as session:
        rows = session.execute(select(ApiKey).where(ApiKey.tenant_id == scope.tenant_id).order_by(ApiKey.id)).scalars()
        return KeyList(keys=[_out(r) for r in rows])


def revoke_key(ctx: ControlContext, scope: TenantScope, key_id: str) -> KeyOut:
    scope.principal.require_admin()
    with ctx.transaction() as session:
        row = session.execute(
            select(ApiKey).where(ApiKey.tenant_id == scope.tenant_id, ApiKey.key_id == key_id).with_for_update()
        ).scalar_one_or_none()
        if row is None:
            raise NotFound(f"no key {key_id!r}")
        if row.revoked_at is None:
            row.revoked_at = func.now()
            audit.record(session, scope, "key.revoke", key_id, before={"revoked": False}, after={"revoked": True})
        session.flush()
        session.refresh(row)
        return _out(row)


def authenticate(session: Session, presented: str, now: dt.datetime | None = None) -> Principal | None:
    """The principal of a live tenant key, or None (unknown, malformed, revoked: all alike)."""
    shape = KEY_SHAPE.match(presented)
    if shape is None:
        return None
    found = session.execute(
        select(ApiKey, Tenant.slug).join(Tenant, Tenant.id == ApiKey.tenant_id).where(ApiKey.key_id == shape.group(1))
    ).first()
    if found is None:
        hmac.compare_digest(_hash(presented), b"\0" * 32)  # same work as a hit
        return None
    row, slug = found
    if not hmac.compare_digest(_hash(presented), row.key_hash) or row.revoked_at is not None:
        return None
    now = now or dt.datetime.now(dt.UTC)
    if row.last_used_at is None or now - row.last_used_at > TOUCH_EVERY:
        session.execute(update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=func.now()))
    return Principal(
        actor=f"key:{row.key_id}", admin=False, tenant_id=row.tenant_id, tenant_slug=slug, scopes=frozenset(row.scopes)
    )
