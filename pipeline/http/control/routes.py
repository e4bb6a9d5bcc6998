"""``/v1/tenants/{tenant}/routes``: the ordered route list, read and replaced whole."""

from __future__ import annotations

from fastapi import APIRouter

from pipeline.control import routes
from pipeline.control.schemas import RoutesIn, RoutesOut
from pipeline.http.control.auth import Control, Scope
from pipeline.http.control.problems import ProblemRoute, responses

router = APIRouter(prefix="/v1/tenants/{tenant}/routes", tags=["routes"], route_class=ProblemRoute)


@router.get(
    "",
    summary="The tenant's routes, in order (the first match wins)",
    response_model=RoutesOut,
    responses=responses(401, 403, 404),
)
def get_routes(ctx: Control, scope: Scope) -> RoutesOut:
    return routes.get_routes(ctx, scope)


@router.put(
    "",
    summary="Replace the routes atomically (an unknown account is a 422 naming it)",
    response_model=RoutesOut,
    responses=responses(401, 403, 404, 409, 413, 422),
)
def put_routes(ctx: Control, scope: Scope, body: RoutesIn) -> RoutesOut:
    return routes.replace_routes(ctx, scope, body)
