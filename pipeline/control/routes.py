"""A tenant's routes: the ordered list, replaced atomically; an unknown account is a 422 naming it."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from pipeline.control import audit
from pipeline.control.context import ControlContext
from pipeline.control.errors import Conflict, Invalid
from pipeline.control.schemas import RouteIn, RouteOut, RoutesIn, RoutesOut
from pipeline.control.scope import ACCOUNTS_MANAGE, TenantScope
from pipeline.control.tenants import lock_and_bump
from pipeline.db.tables import Route, SmtpAccount


def _rows(session: Session, scope: TenantScope) -> list[Route]:
    query = select(Route).where(Route.tenant_id == scope.tenant_id).order_by(Route.position)
    return list(session.execute(query).scalars().all())


def _out(row: Route) -> RouteOut:
    return RouteOut(
        name=row.name, match=row.match, accounts=list(row.accounts), strategy=row.strategy, tracking_domain=row.tracking_domain
    )


def get_routes(ctx: ControlContext, scope: TenantScope) -> RoutesOut:
    scope.require(ACCOUNTS_MANAGE)
    with ctx.transaction() as session:
        rows = _rows(session, scope)
        return RoutesOut(routes=[_out(r) for r in rows], managed_by_file=any(r.managed_by_file for r in rows))


def replace_routes(ctx: ControlContext, scope: TenantScope, data: RoutesIn, *, from_file: bool = False) -> RoutesOut:
    scope.require(ACCOUNTS_MANAGE)
    with ctx.transaction() as session:
        lock_and_bump(session, scope)
        current = _rows(session, scope)
        if any(r.managed_by_file for r in current) and not from_file:
            raise Conflict("this tenant's routes are declared in the config file (mailpipe config apply): change them there")
        known = set(session.execute(select(SmtpAccount.name).where(SmtpAccount.tenant_id == scope.tenant_id)).scalars())
        for index, route in enumerate(data.routes):
            for name in route.accounts:
                if name not in known:
                    raise Invalid(f"routes[{index}].accounts: unknown account {name!r}", field=f"routes[{index}].accounts")
        before = [_out(r).model_dump(mode="json") for r in current]
        session.execute(delete(Route).where(Route.tenant_id == scope.tenant_id))
        session.flush()
        rows = [_row(scope, index, route, from_file) for index, route in enumerate(data.routes)]
        session.add_all(rows)
        session.flush()
        out = RoutesOut(routes=[_out(r) for r in rows], managed_by_file=from_file and bool(rows))
        audit.record(
            session,
            scope,
            "routes.replace",
            None,
            before={"routes": before},
            after={"routes": [r.model_dump(mode="json") for r in out.routes]},
        )
        return out


def _row(scope: TenantScope, position: int, route: RouteIn, from_file: bool) -> Route:
    return Route(
        tenant_id=scope.tenant_id,
        position=position,
        name=route.name,
        match=route.match.model_dump(exclude_none=True),
        accounts=list(route.accounts),
        strategy=route.strategy.value,
        tracking_domain=route.tracking_domain,
        managed_by_file=from_file,
    )
