"""Tenants: created by admins, each with its own data key; deleting one destroys that key."""

from __future__ import annotations

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from pipeline.control import audit
from pipeline.control.context import ControlContext
from pipeline.control.crypto import DataKey
from pipeline.control.errors import NotFound
from pipeline.control.schemas import TenantIn, TenantList, TenantOut
from pipeline.control.scope import Principal, TenantScope, resolve_scope
from pipeline.db.channels import REGISTRY_CHANNEL
from pipeline.db.tables import SmtpAccount, Tenant, TenantDataKey

MAX_PAGE = 500


def _out(session: Session, tenant: Tenant) -> TenantOut:
    count = session.execute(select(func.count()).where(SmtpAccount.tenant_id == tenant.id)).scalar_one()
    return TenantOut(tenant=tenant.slug, display_name=tenant.display_name, accounts=count, created_at=tenant.created_at)


def put_tenant(ctx: ControlContext, principal: Principal, slug: str, data: TenantIn) -> tuple[TenantOut, bool]:
    """Create the tenant (with a fresh data key) or update its display name; (tenant, created)."""
    if not principal.admin and principal.tenant_slug != slug:
        raise NotFound(f"no tenant {slug!r}")  # a tenant key learns nothing about other tenants
    principal.require_admin()
    with ctx.transaction() as session:
        tenant = session.execute(select(Tenant).where(Tenant.slug == slug).with_for_update()).scalar_one_or_none()
        created = tenant is None
        if tenant is None:
            tenant = Tenant(slug=slug, display_name=data.display_name)
            session.add(tenant)
            session.flush()
            master_key_id, wrapped = ctx.keyring.new_data_key(tenant.id)
            session.add(TenantDataKey(tenant_id=tenant.id, master_key_id=master_key_id, wrapped_key=wrapped))
        elif "display_name" in data.model_fields_set:
            tenant.display_name = data.display_name
            tenant.updated_at = func.now()
        scope = TenantScope(tenant.id, slug, principal)
        audit.record(
            session, scope, "tenant.create" if created else "tenant.update", slug, after={"display_name": data.display_name}
        )
        session.flush()
        session.refresh(tenant)
        return _out(session, tenant), created


def list_tenants(ctx: ControlContext, principal: Principal, *, after: str | None = None, limit: int = 100) -> TenantList:
    principal.require_admin()
    limit = max(1, min(limit, MAX_PAGE))
    with ctx.transaction() as session:
        query = select(Tenant)
        if after is not None:
            query = query.where(Tenant.slug > after)
        rows = session.execute(query.order_by(Tenant.slug).limit(limit + 1)).scalars().all()
        page = rows[:limit]
        counts = dict(
            session.execute(
                select(SmtpAccount.tenant_id, func.count())
                .where(SmtpAccount.tenant_id.in_([t.id for t in page]))
                .group_by(SmtpAccount.tenant_id)
            )
            .tuples()
            .all()
        )
        tenants = [
            TenantOut(tenant=t.slug, display_name=t.display_name, accounts=counts.get(t.id, 0), created_at=t.created_at)
            for t in page
        ]
    return TenantList(tenants=tenants, next_cursor=page[-1].slug if len(rows) > limit else None)


def get_tenant(ctx: ControlContext, principal: Principal, slug: str) -> TenantOut:
    with ctx.transaction() as session:
        scope = resolve_scope(session, principal, slug)
        tenant = session.get_one(Tenant, scope.tenant_id)
        return _out(session, tenant)


def delete_tenant(ctx: ControlContext, principal: Principal, slug: str) -> None:
    """Everything the tenant owns goes with it (cascade), its data key first among them."""
    with ctx.transaction() as session:
        scope = resolve_scope(session, principal, slug)
        principal.require_admin()
        audit.record(session, scope, "tenant.delete", slug)
        session.execute(delete(TenantDataKey).where(TenantDataKey.tenant_id == scope.tenant_id))
        session.execute(delete(Tenant).where(Tenant.id == scope.tenant_id))
        notify_change(session, slug)


def lock_and_bump(session: Session, scope: TenantScope) -> None:
    """Serialise changes inside one tenant and tell snapshot holders something changed."""
    session.execute(update(Tenant).where(Tenant.id == scope.tenant_id).values(version=Tenant.version + 1, updated_at=func.now()))
    notify_change(session, scope.slug)


def notify_change(session: Session, slug: str) -> None:
    """Workers holding this tenant's snapshot drop it when the transaction commits (see pipeline.registry.cache)."""
    session.execute(select(func.pg_notify(REGISTRY_CHANNEL, slug)))


def data_key(ctx: ControlContext, session: Session, scope: TenantScope) -> DataKey:
    row = session.get(TenantDataKey, scope.tenant_id)
    if row is None:
        raise NotFound(f"tenant {scope.slug!r} has no data key")
    return ctx.keyring.unwrap(scope.tenant_id, row.master_key_id, row.wrapped_key)
