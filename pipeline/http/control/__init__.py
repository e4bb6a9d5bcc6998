"""The control-plane API: thin routers over ``pipeline.control`` (docs/architecture.md: "Tenants and the control plane")."""

from __future__ import annotations

from fastapi import APIRouter

from pipeline.http.control import accounts, audit, events, keys, oauth, routes, suppressions, tenants


def routers() -> list[APIRouter]:
    return [
        tenants.router,
        accounts.router,
        oauth.router,
        routes.router,
        keys.router,
        audit.router,
        events.router,
        suppressions.router,
        suppressions.imports,
    ]
