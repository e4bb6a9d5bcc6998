"""One dependency turns the bearer key into a principal, one turns principal + URL tenant into a scope.

Admin tokens (``[serve] admin_tokens``) reach every tenant; a tenant key reaches its own tenant only:
any other tenant, existing or not, is a 404.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from pipeline.control import keys
from pipeline.control.context import ControlContext
from pipeline.control.errors import NotConfigured, Unauthorized
from pipeline.control.schemas import NAME_PATTERN
from pipeline.control.scope import Principal, TenantScope, resolve_scope

BEARER = HTTPBearer(auto_error=False, description="an admin token ([serve] admin_tokens) or a tenant key (mp_live_…)")
SLUG_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"


def control_of(request: Request) -> ControlContext:
    ctx: ControlContext | None = getattr(request.app.state, "control", None)
    if ctx is None:
        raise NotConfigured("the control plane needs a database: set [database] url (or MAILPIPE_DATABASE_URL)")
    return ctx


Control = Annotated[ControlContext, Depends(control_of)]


def _tenant_key(ctx: ControlContext, token: str) -> Principal | None:
    if not keys.looks_like_key(token):
        return None
    with ctx.transaction() as session:
        return keys.authenticate(session, token)


def principal(ctx: Control, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]) -> Principal:
    token = credentials.credentials if credentials is not None else ""
    if token:
        found = ctx.admin_for(token) or _tenant_key(ctx, token)
        if found is not None:
            return found
    raise Unauthorized("a valid admin token or tenant key is required")


def own_tenant_scope(request: Request, token: str, needed: str) -> TenantScope | None:
    """A tenant key's scope on its own tenant, for endpoints whose tenant comes from the key (``/v1/events``).

    None when ``token`` is not a live tenant key or the deployment has no database; Forbidden when the
    key lacks ``needed`` (its own tenant, so a 403 leaks nothing).
    """
    ctx: ControlContext | None = getattr(request.app.state, "control", None)
    if ctx is None or not token:
        return None
    found = _tenant_key(ctx, token)
    if found is None or found.tenant_id is None or found.tenant_slug is None:
        return None
    scope = TenantScope(found.tenant_id, found.tenant_slug, found)
    scope.require(needed)
    return scope


Caller = Annotated[Principal, Depends(principal)]
TenantSlug = Annotated[str, Path(pattern=SLUG_PATTERN, description="the tenant's slug")]
AccountName = Annotated[str, Path(pattern=NAME_PATTERN, description="the account's name")]


def tenant_scope(ctx: Control, caller: Caller, tenant: TenantSlug) -> TenantScope:
    with ctx.transaction() as session:
        return resolve_scope(session, caller, tenant)


Scope = Annotated[TenantScope, Depends(tenant_scope)]
