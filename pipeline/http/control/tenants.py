"""``/v1/tenants``: admins create, list, read and delete tenants; a tenant key may read its own."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from pipeline.control import tenants
from pipeline.control.schemas import TenantIn, TenantList, TenantOut
from pipeline.http.control.auth import Caller, Control, Scope, TenantSlug
from pipeline.http.control.problems import ProblemRoute, responses

router = APIRouter(prefix="/v1/tenants", tags=["tenants"], route_class=ProblemRoute)


@router.put(
    "/{tenant}",
    summary="Create a tenant, or change its display name",
    response_model=TenantOut,
    status_code=200,
    responses={201: {"model": TenantOut, "description": "created"}, **responses(401, 403, 422)},
)
def put_tenant(ctx: Control, caller: Caller, tenant: TenantSlug, body: TenantIn, response: Response) -> TenantOut:
    out, created = tenants.put_tenant(ctx, caller, tenant, body)
    response.status_code = 201 if created else 200
    return out


@router.get("", summary="Every tenant, by slug (cursor pagination)", response_model=TenantList, responses=responses(401, 403))
def list_tenants(
    ctx: Control,
    caller: Caller,
    after: Annotated[str | None, Query(max_length=64, description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> TenantList:
    return tenants.list_tenants(ctx, caller, after=after, limit=limit)


@router.get("/{tenant}", summary="One tenant", response_model=TenantOut, responses=responses(401, 404))
def get_tenant(ctx: Control, scope: Scope) -> TenantOut:
    return tenants.get_tenant(ctx, scope.principal, scope.slug)


@router.delete(
    "/{tenant}",
    summary="Delete a tenant with its accounts, routes, keys and data key",
    status_code=204,
    responses=responses(401, 403, 404),
)
def delete_tenant(ctx: Control, scope: Scope) -> Response:
    tenants.delete_tenant(ctx, scope.principal, scope.slug)
    return Response(status_code=204)
