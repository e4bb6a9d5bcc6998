"""Who is calling, and the one tenant an operation may touch.

A ``TenantScope`` is made only by ``resolve_scope`` (the caller's access to the tenant checked in
one place, as Sentry's ``convert_args``); every repository function takes it first and filters on
its ``tenant_id``, so no row is ever looked up by name or id alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.control.errors import Forbidden, NotFound
from pipeline.control.scope_names import ACCOUNTS_MANAGE as ACCOUNTS_MANAGE
from pipeline.control.scope_names import ALL_SCOPES as ALL_SCOPES
from pipeline.control.scope_names import EVENTS_READ as EVENTS_READ
from pipeline.control.scope_names import EVENTS_WRITE as EVENTS_WRITE
from pipeline.db.tables import Tenant


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: an admin (deployment token, the CLI, the config file) or a tenant key."""

    actor: str  # "admin:<fingerprint>", "key:<key_id>", "cli:<user>", "file"
    admin: bool
    tenant_id: int | None = None  # a tenant key's own tenant
    tenant_slug: str | None = None
    scopes: frozenset[str] = frozenset(ALL_SCOPES)

    def require_admin(self) -> None:
        if not self.admin:
            raise Forbidden("this operation needs an admin token")


@dataclass(frozen=True)
class TenantScope:
    tenant_id: int
    slug: str
    principal: Principal

    @property
    def actor(self) -> str:
        return self.principal.actor

    def require(self, scope: str) -> None:
        if not self.principal.admin and scope not in self.principal.scopes:
            raise Forbidden(f"this key lacks the {scope!r} scope")


def resolve_scope(session: Session, principal: Principal, slug: str) -> TenantScope:
    """The scope for ``slug``; another tenant's (or an unknown) tenant is NotFound, never Forbidden."""
    if not principal.admin:
        if principal.tenant_slug != slug or principal.tenant_id is None:
            raise NotFound(f"no tenant {slug!r}")
        return TenantScope(principal.tenant_id, slug, principal)
    tenant_id = session.execute(select(Tenant.id).where(Tenant.slug == slug)).scalar_one_or_none()
    if tenant_id is None:
        raise NotFound(f"no tenant {slug!r}")
    return TenantScope(tenant_id, slug, principal)
