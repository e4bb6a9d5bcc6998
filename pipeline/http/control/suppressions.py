"""``/v1/tenants/{tenant}/suppressions``: a tenant's suppression lists (list, search, add, remove, import, export).

The database keeps them and Redis the hot index the route stage reads; both are updated by
``pipeline.control.suppressions``. Reading needs ``events:read``; changing them ``accounts:manage``
(a removal lets mail reach an address again, so it also needs a reason and is audited).
"""

from __future__ import annotations

import datetime as dt
from email import policy
from email.parser import BytesParser
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from pipeline.control import suppressions
from pipeline.control.context import ControlContext
from pipeline.control.errors import Invalid, NotConfigured
from pipeline.control.scope import ACCOUNTS_MANAGE, EVENTS_READ, TenantScope
from pipeline.db.delivery_tables import SUPPRESSION_REASONS, TENANT_WIDE
from pipeline.http.control.auth import Control, Scope
from pipeline.http.control.problems import ProblemRoute, responses
from pipeline.state.suppression import SuppressionStore

PREFIX = "/v1/tenants/{tenant}/suppressions"
CSV = "text/csv"
MAX_IMPORT_BYTES = 64 * 1024 * 1024  # ~2 million addresses


class ImportRoute(ProblemRoute):
    max_body_bytes = MAX_IMPORT_BYTES


router = APIRouter(prefix=PREFIX, tags=["suppressions"], route_class=ProblemRoute)
imports = APIRouter(prefix=PREFIX, tags=["suppressions"], route_class=ImportRoute)
Address = Annotated[str, Path(min_length=3, max_length=320, description="the email address")]
ListScope = Annotated[str, Query(max_length=200, description="a list's name; empty: the tenant-wide entry")]


class SuppressionOut(BaseModel):
    id: int
    address: str
    scope: str = Field(description="empty: all mail of the tenant; else one list")
    reason: str
    detail: str | None
    source: str
    created_at: dt.datetime


class SuppressionList(BaseModel):
    suppressions: list[SuppressionOut]
    next_cursor: int | None = Field(description="pass as ?after= for the next page; null on the last one")


class AddressStatus(BaseModel):
    address: str
    suppressed: bool
    entries: list[SuppressionOut]


class SuppressionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    address: str = Field(min_length=3, max_length=320)
    scope: str = Field(default=TENANT_WIDE, max_length=200, description="a list's name; empty: all of the tenant's mail")
    reason: str = Field(default="manual", description=f"one of {', '.join(SUPPRESSION_REASONS)}")


class Added(BaseModel):
    address: str
    scope: str
    added: bool = Field(description="false when it was already suppressed")


class ImportOut(BaseModel):
    added: int
    already: int
    errors: list[str] = Field(description='each refused row, "line N: why"; the good rows are kept')


def _hot(request: Request) -> SuppressionStore:
    serve = getattr(request.app.state, "serve", None)
    if serve is None:
        raise NotConfigured("suppression changes need Redis (the hot index): run them in `mailpipe serve`")
    return SuppressionStore(serve.client)


@router.get(
    "",
    summary="The tenant's suppressions, oldest first (?q= searches addresses); `Accept: text/csv` exports them all",
    response_model=SuppressionList,
    responses={**responses(401, 403, 404, 422), 200: {"content": {CSV: {}}, "description": "a page, or the CSV export"}},
)
def list_suppressions(
    request: Request,
    ctx: Control,
    scope: Scope,
    q: Annotated[str | None, Query(min_length=1, max_length=320, description="a part of the address")] = None,
    after: Annotated[int, Query(ge=0, description="next_cursor of the previous page")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    scope.require(EVENTS_READ)
    if CSV in request.headers.get("accept", ""):
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d")
        return StreamingResponse(
            suppressions.export_csv(ctx.engine, scope.slug),
            media_type=CSV,
            headers={"Content-Disposition": f'attachment; filename="suppressions-{scope.slug}-{stamp}.csv"'},
        )
    rows = suppressions.search(ctx.engine, scope.slug, query=q, limit=limit + 1, after_id=after)
    more = len(rows) > limit
    rows = rows[:limit]
    return SuppressionList(
        suppressions=[SuppressionOut(**r) for r in rows], next_cursor=rows[-1]["id"] if more and rows else None
    )


@router.get(
    "/{address}",
    summary="Is this address suppressed, since when, because of what",
    response_model=AddressStatus,
    responses=responses(401, 403, 404),
)
def get_address(ctx: Control, scope: Scope, address: Address) -> AddressStatus:
    scope.require(EVENTS_READ)
    entries = [SuppressionOut(**r) for r in suppressions.lookup(ctx.engine, scope.slug, address)]
    return AddressStatus(address=address.strip().lower(), suppressed=bool(entries), entries=entries)


@router.post(
    "",
    summary="Suppress an address (tenant-wide, or on one list)",
    status_code=201,
    response_model=Added,
    responses=responses(401, 403, 404, 413, 422),
)
def add_suppression(request: Request, ctx: Control, scope: Scope, body: SuppressionIn, response: Response) -> Added:
    scope.require(ACCOUNTS_MANAGE)
    added = suppressions.add(
        ctx.engine,
        _hot(request),
        scope.slug,
        body.address,
        body.reason,
        scope=body.scope,
        source="api",
        actor=scope.actor,
        tenant_id=scope.tenant_id,
    )
    if not added:
        response.status_code = 200
    return Added(address=body.address.strip().lower(), scope=body.scope.strip(), added=added)


@router.delete(
    "/{address}",
    summary="Let an address receive mail again (a reason is required; audited)",
    status_code=204,
    responses=responses(401, 403, 404, 422),
)
def remove_suppression(
    request: Request,
    ctx: Control,
    scope: Scope,
    address: Address,
    reason: Annotated[str, Query(min_length=1, max_length=500, description="why (kept in the audit log)")],
    list_scope: Annotated[str, Query(alias="scope", max_length=200, description="a list's name; empty: tenant-wide")] = "",
) -> Response:
    scope.require(ACCOUNTS_MANAGE)
    suppressions.remove(
        ctx.engine,
        _hot(request),
        scope.slug,
        address,
        why=reason,
        scope=list_scope,
        actor=scope.actor,
        tenant_id=scope.tenant_id,
    )
    return Response(status_code=204)


@imports.post(
    "/import",
    summary="Import a CSV of address[,scope[,reason]] (multipart field `file`, or a text/csv body)",
    response_model=ImportOut,
    responses=responses(401, 403, 404, 413, 422),
    openapi_extra={
        "requestBody": {
            "content": {
                CSV: {"schema": {"type": "string"}},
                "multipart/form-data": {
                    "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
                },
            }
        }
    },
)
async def import_suppressions(
    request: Request,
    ctx: Control,
    scope: Scope,
    reason: Annotated[str, Query(description="for rows that name none")] = "import",
    source: Annotated[str, Query(min_length=1, max_length=100, description="where the list came from")] = "import",
) -> ImportOut:
    scope.require(ACCOUNTS_MANAGE)
    if reason not in SUPPRESSION_REASONS:
        raise Invalid(f"reason: one of {', '.join(SUPPRESSION_REASONS)}", field="reason")
    data = _csv_upload(request.headers.get("content-type", ""), await request.body())
    try:
        lines = data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise Invalid("file: the CSV must be UTF-8", field="file") from None
    report = await run_in_threadpool(_import, ctx, _hot(request), scope, lines, source, reason)
    return ImportOut(added=report.added, already=report.already, errors=report.errors)


def _import(
    ctx: ControlContext, hot: SuppressionStore, scope: TenantScope, lines: list[str], source: str, reason: str
) -> suppressions.ImportReport:
    return suppressions.import_csv(ctx.engine, hot, scope.slug, lines, source=source, reason=reason)


def _csv_upload(content_type: str, body: bytes) -> bytes:
    """The CSV itself: a text/csv (or text/plain) body, or the ``file`` part of a multipart form."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind in (CSV, "text/plain", "application/csv"):
        return body
    if kind != "multipart/form-data":
        raise Invalid("file: send text/csv, or multipart/form-data with a `file` part", field="file")
    form = BytesParser(policy=policy.HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    for part in form.iter_parts() if form.is_multipart() else []:
        if part.get_param("name", header="content-disposition") == "file":
            payload = part.get_payload(decode=True)
            return payload if isinstance(payload, bytes) else b""
    raise Invalid("file: the multipart form has no `file` part", field="file")
