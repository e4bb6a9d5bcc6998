"""``GET /v1/events`` (the delivery log: keyset pages, or a CSV export) and ``POST /v1/events/retry``.

The tenant comes from the key (an admin token names it with ``?tenant=``); the work is done by
``pipeline.control.events``. A CSV export streams ``COPY … TO STDOUT`` chunk by chunk, so it runs in
constant memory whatever its size.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from pipeline.control import events
from pipeline.control.errors import Forbidden, NotConfigured, NotFound
from pipeline.control.scope import EVENTS_READ, EVENTS_WRITE, Principal
from pipeline.http.control.auth import SLUG_PATTERN, Caller, Control
from pipeline.http.control.problems import ProblemRoute, responses

router = APIRouter(tags=["delivery log"], route_class=ProblemRoute)
CSV = "text/csv"
Text = Annotated[str | None, Query(min_length=1, max_length=320)]
AdminTenant = Annotated[
    str | None, Query(pattern=SLUG_PATTERN, description="an admin token's tenant (default `default`); a key's is its own")
]


def tenant_of(caller: Principal, tenant: str | None) -> str:
    """The one tenant whose delivery log this caller reads: a key's own; any other named tenant is a 404."""
    if caller.admin:
        return tenant or "default"
    if caller.tenant_slug is None or tenant not in (None, caller.tenant_slug):
        raise NotFound(f"no tenant {tenant!r}")
    return caller.tenant_slug


def _require(caller: Principal, needed: str) -> None:
    if not caller.admin and needed not in caller.scopes:
        raise Forbidden(f"this key lacks the {needed!r} scope")


class Filters(BaseModel):
    """The same filters for the listing, the export and the retry; ``since``/``until`` bound ``created_at``."""

    model_config = ConfigDict(extra="forbid")

    campaign: str | None = Field(default=None, min_length=1, max_length=200)
    list: str | None = Field(default=None, min_length=1, max_length=200)
    sender: str | None = Field(default=None, min_length=1, max_length=320)
    account: str | None = Field(default=None, min_length=1, max_length=64)
    outcome: str | None = Field(default=None, min_length=1, max_length=32)
    reason: str | None = Field(default=None, min_length=1, max_length=64)
    to: str | None = Field(default=None, min_length=1, max_length=320)
    since: dt.datetime | None = Field(default=None, description="created at or after (ISO 8601; UTC when no offset)")
    until: dt.datetime | None = Field(default=None, description="created before")

    def service(self) -> events.EventFilter:
        values: dict[str, Any] = self.model_dump(include=set(Filters.model_fields))
        for name in ("since", "until"):
            if values[name] is not None and values[name].tzinfo is None:
                values[name] = values[name].replace(tzinfo=dt.UTC)
        if values["since"] and values["until"] and values["since"] >= values["until"]:
            raise events.BadFilter("until: must be after since", field="until")
        return events.EventFilter(**values)


def query_filters(
    campaign: Text = None,
    list: Text = None,
    sender: Text = None,
    account: Text = None,
    outcome: Text = None,
    reason: Text = None,
    to: Text = None,
    since: Annotated[dt.datetime | None, Query(description="created at or after (ISO 8601)")] = None,
    until: Annotated[dt.datetime | None, Query(description="created before (ISO 8601)")] = None,
) -> Filters:
    return Filters(
        campaign=campaign,
        list=list,
        sender=sender,
        account=account,
        outcome=outcome,
        reason=reason,
        to=to,
        since=since,
        until=until,
    )


class DeliveryEventOut(BaseModel):
    event_id: str
    created_at: dt.datetime
    final_at: dt.datetime | None
    state: str
    outcome: str | None
    campaign: str | None
    list: str | None
    sender: str | None
    recipient: str | None
    account: str | None
    route: str | None
    reason: str | None
    last_reply: str | None
    attempts: int
    message_id: str | None
    retry_of: str | None


class EventPage(BaseModel):
    events: list[DeliveryEventOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last one")


def _checked(call: Any) -> Any:
    """Run a service call; a refused filter names its field (the text before the colon)."""
    try:
        return call()
    except events.BadFilter as exc:
        raise events.BadFilter(exc.detail, field=exc.field or exc.detail.split(":", 1)[0]) from None


@router.get(
    "/v1/events",
    summary="The delivery log, filtered: a keyset page of JSON, or with `Accept: text/csv` the whole export",
    response_model=EventPage,
    responses={**responses(401, 403, 404, 422), 200: {"content": {CSV: {}}, "description": "a page, or the CSV export"}},
)
def list_events(
    request: Request,
    ctx: Control,
    caller: Caller,
    filters: Annotated[Filters, Depends(query_filters)],
    tenant: AdminTenant = None,
    limit: Annotated[int, Query(ge=1, le=events.MAX_PAGE)] = 100,
    cursor: Annotated[str | None, Query(max_length=500, description="next_cursor of the previous page")] = None,
) -> Any:
    _require(caller, EVENTS_READ)
    slug = tenant_of(caller, tenant)
    chosen = _checked(filters.service)
    if CSV in request.headers.get("accept", ""):
        chunks = _checked(lambda: _first_chunk_ahead(events.export_csv(ctx.engine, slug, chosen)))
        day = dt.datetime.now(dt.UTC).strftime("%Y%m%d")
        disposition = f'attachment; filename="delivery-log-{slug}-{day}.csv"'
        return StreamingResponse(chunks, media_type=CSV, headers={"Content-Disposition": disposition})
    page = _checked(lambda: events.listing(ctx.engine, slug, chosen, limit=limit, cursor=cursor))
    return EventPage(events=[DeliveryEventOut(**row) for row in page.events], next_cursor=page.next_cursor)


def _first_chunk_ahead(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Start the export before the response does, so a database error is a problem response, not a cut stream."""
    first = next(chunks, b"")

    def stream() -> Iterator[bytes]:
        yield first
        yield from chunks

    return stream()


class RetryIn(Filters):
    dry_run: bool = Field(default=False, description="report what would be resubmitted; send nothing")


class RetryOut(BaseModel):
    dry_run: bool
    resubmitted: int = Field(description="new events accepted (would be, on a dry run)")
    duplicates: int = Field(description="retries already submitted by an earlier run: not sent again")
    refused: int
    skipped_suppressed: int = Field(description="suppressed or hard-bounced recipients")
    skipped_already_retried: int
    skipped_no_event: int = Field(description="rows without the original lead event")
    events: list[dict[str, str | None]] = Field(description="retry event_id, retry_of and recipient of each")


@router.post(
    "/v1/events/retry",
    summary="Resubmit only the failed mail matching the filters, as new events linked by retry_of (idempotent)",
    response_model=RetryOut,
    responses=responses(401, 403, 404, 413, 422, 503),
)
async def retry_events(
    request: Request,
    ctx: Control,
    caller: Caller,
    body: Annotated[RetryIn | None, Body()] = None,
    tenant: AdminTenant = None,
) -> RetryOut:
    _require(caller, EVENTS_WRITE)
    slug = tenant_of(caller, tenant)
    given = body or RetryIn()
    chosen = _checked(given.service)
    plan = await run_in_threadpool(lambda: _checked(lambda: events.plan_retry(ctx.engine, slug, chosen)))
    out = RetryOut(
        dry_run=given.dry_run,
        resubmitted=len(plan.resubmit),
        duplicates=0,
        refused=0,
        skipped_suppressed=plan.skipped_suppressed,
        skipped_already_retried=plan.skipped_already_retried,
        skipped_no_event=plan.skipped_no_event,
        events=[{"event_id": e["event_id"], "retry_of": e["metadata"]["retry_of"], "to": e.get("to")} for e in plan.resubmit],
    )
    if given.dry_run or not plan.resubmit:
        return out
    serve = getattr(request.app.state, "serve", None)
    if serve is None:
        raise NotConfigured("retrying needs the ingest side of `mailpipe serve` (Redis) in this process")
    report = await run_in_threadpool(serve.submitter.submit, plan.resubmit, source="retry")
    out.resubmitted, out.duplicates, out.refused = len(report.accepted), len(report.duplicates), len(report.errors)
    return out
