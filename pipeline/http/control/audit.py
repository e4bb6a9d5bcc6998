"""``/v1/tenants/{tenant}/audit``: every change to accounts, routes and keys, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from pipeline.control import audit
from pipeline.control.schemas import AuditList
from pipeline.control.scope import ACCOUNTS_MANAGE
from pipeline.http.control.auth import Control, Scope
from pipeline.http.control.problems import ProblemRoute, responses

router = APIRouter(prefix="/v1/tenants/{tenant}/audit", tags=["audit"], route_class=ProblemRoute)


@router.get(
    "",
    summary='Who changed what, when, before and after (secrets only as "changed")',
    response_model=AuditList,
    responses=responses(401, 403, 404),
)
def get_audit(
    ctx: Control,
    scope: Scope,
    before: Annotated[int | None, Query(ge=1, description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AuditList:
    scope.require(ACCOUNTS_MANAGE)
    with ctx.transaction() as session:
        return audit.listing(session, scope, before_id=before, limit=limit)
