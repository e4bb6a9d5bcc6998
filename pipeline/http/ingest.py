"""``POST /v1/events`` (one event or a batch) and ``GET /v1/events/{event_id}`` for upstreams in any language."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from pipeline.control.errors import ControlError
from pipeline.control.scope import EVENTS_READ, EVENTS_WRITE
from pipeline.http.bodies import read_body
from pipeline.http.control.auth import own_tenant_scope
from pipeline.http.instruments import INGEST_EVENTS
from pipeline.http.schemas import EventStatusOut, IngestResult, ItemErrorOut, Problem
from pipeline.http.state import ServeState
from pipeline.submit import ItemError, SubmitReport

router = APIRouter(tags=["ingest"])
EVENT_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "oneOf": [
                    {"$ref": "#/components/schemas/LeadEvent"},
                    {"type": "array", "items": {"$ref": "#/components/schemas/LeadEvent"}, "minItems": 1},
                ]
            },
            "example": {
                "event_id": "crm-48213",
                "to": "ada@example.com",
                "to_name": "Ada",
                "campaign": "spring",
                "template": "welcome",
                "data": {"first_name": "Ada", "company": "Analytical Engines"},
            },
        }
    },
}
UNAUTHORIZED = {"model": Problem, "description": "missing or unknown bearer token"}


def state_of(request: Request) -> ServeState:
    state: ServeState = request.app.state.serve
    return state


BEARER = HTTPBearer(
    auto_error=False,
    description="one of [serve] ingest_tokens (any tenant), or a tenant key (mp_live_…, its own tenant only) "
    "with the events:write scope to submit, events:read to read",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]


@dataclass(frozen=True)
class EventsCaller:
    """Who submits or reads events: a deployment ingest token (``tenant`` None: any tenant) or a tenant key."""

    state: ServeState
    tenant: str | None


def _caller(request: Request, credentials: HTTPAuthorizationCredentials | None, needed: str) -> EventsCaller:
    state = state_of(request)
    token = credentials.credentials if credentials is not None else ""
    if token and state.token_allowed(token):
        return EventsCaller(state, None)
    try:
        scope = own_tenant_scope(request, token, needed)
    except ControlError as exc:
        raise HTTPException(exc.status, exc.detail) from None
    if scope is None:
        raise HTTPException(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})
    return EventsCaller(state, scope.slug)


def require_writer(request: Request, credentials: Credentials) -> EventsCaller:
    return _caller(request, credentials, EVENTS_WRITE)


def require_reader(request: Request, credentials: Credentials) -> EventsCaller:
    return _caller(request, credentials, EVENTS_READ)


Writer = Annotated[EventsCaller, Depends(require_writer)]
Reader = Annotated[EventsCaller, Depends(require_reader)]


def _own_tenant(items: list[Any], tenant: str) -> tuple[list[int], list[Any], list[ItemError]]:
    """A tenant key's events: the tenant filled in from the key; an event naming another one is refused.

    The refusal is a per-event 422 naming ``tenant`` (not a 404): the key's holder wrote the field, and
    the check compares it with the key alone (no lookup), so it says nothing about whether that tenant
    exists. Returns (original positions of the kept events, the kept events, the refusals).
    """
    positions: list[int] = []
    kept: list[Any] = []
    refused: list[ItemError] = []
    for index, item in enumerate(items):
        if isinstance(item, dict):
            named = item.get("tenant")
            if named is not None and named != tenant:
                event_id = item["event_id"][:200] if isinstance(item.get("event_id"), str) else None
                refused.append(ItemError(index, [f"tenant: this key submits for tenant {tenant!r} only"], event_id))
                continue
            item = {**item, "tenant": tenant}
        positions.append(index)
        kept.append(item)
    return positions, kept, refused


def _items(body: bytes) -> list[Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise HTTPException(422, "body is not valid JSON") from None
    if isinstance(data, dict):
        return [data]
    if isinstance(data, list) and data:
        return data
    raise HTTPException(422, "body must be one event (a JSON object) or a non-empty array of events")


@router.post(
    "/v1/events",
    summary="Submit one lead event or a batch",
    openapi_extra={"requestBody": EVENT_BODY},
    status_code=202,
    response_model=IngestResult,
    responses={
        207: {"model": IngestResult, "description": "some events refused: see errors; the others are accepted"},
        401: UNAUTHORIZED,
        403: {"model": Problem, "description": "the tenant key lacks the events:write scope"},
        413: {"model": Problem, "description": "body larger than max_body_bytes, or more events than max_batch"},
        422: {
            "model": IngestResult | Problem,
            "description": (
                "no valid event in the request (or a body that is not JSON); "
                "with a tenant key, an event naming another tenant is refused on `tenant`"
            ),
        },
    },
)
async def submit_events(request: Request, caller: Writer) -> JSONResponse:
    """Validate each event as ``mailpipe submit`` does: valid ones are accepted (idempotent on
    ``event_id``: a resubmitted event is reported under ``duplicates`` and never sent twice),
    invalid ones are listed with their index and errors. With a tenant key the tenant is the key's:
    an event without ``tenant`` gets it, one naming another tenant is refused (error on ``tenant``)."""
    state = caller.state
    body = await read_body(request, state.config.serve.max_body_bytes)
    items = _items(body)
    if len(items) > state.config.serve.max_batch:
        raise HTTPException(413, f"at most {state.config.serve.max_batch} events per request")
    positions, refused = list(range(len(items))), list[ItemError]()
    if caller.tenant is not None:
        positions, items, refused = _own_tenant(items, caller.tenant)
    report = SubmitReport()
    if items:
        report = await run_in_threadpool(state.submitter.submit, items, source="http")
    for error in report.errors:
        error.index = positions[error.index]
    report.errors = sorted(report.errors + refused, key=lambda e: e.index)
    INGEST_EVENTS.labels("accepted").inc(len(report.accepted))
    INGEST_EVENTS.labels("duplicate").inc(len(report.duplicates))
    INGEST_EVENTS.labels("refused").inc(len(report.errors))
    result = IngestResult(
        accepted=report.accepted,
        duplicates=report.duplicates,
        errors=[ItemErrorOut(index=e.index, event_id=e.event_id, errors=e.errors) for e in report.errors],
    )
    code = 202 if not report.errors else (207 if report.accepted or report.duplicates else 422)
    return JSONResponse(result.model_dump(), status_code=code)


@router.get(
    "/v1/events/{event_id}",
    summary="An event's state, final outcome and status history",
    response_model=EventStatusOut,
    responses={
        401: UNAUTHORIZED,
        403: {"model": Problem, "description": "the tenant key lacks the events:read scope"},
        404: {"model": Problem, "description": "no such event in this tenant"},
    },
)
def get_event(
    caller: Reader,
    event_id: Annotated[str, Path(min_length=1, max_length=200)],
    tenant: Annotated[
        str | None,
        Query(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="default: the key's tenant, or `default` for an ingest token"),
    ] = None,
) -> EventStatusOut:
    if caller.tenant is not None:
        if tenant not in (None, caller.tenant):  # another tenant's event looks exactly like a missing one
            raise HTTPException(404, f"no event {event_id!r}")
        status = caller.state.status.get(caller.tenant, event_id)
        if status is None:
            raise HTTPException(404, f"no event {event_id!r}")
    else:
        tenant = tenant or "default"
        status = caller.state.status.get(tenant, event_id)
        if status is None:
            raise HTTPException(404, f"no event {event_id!r} in tenant {tenant!r}")
    return EventStatusOut(
        event_id=status.event_id,
        tenant=status.tenant,
        state=status.state,
        outcome=status.outcome,
        created=status.created,
        updated=status.updated,
        history=status.history,
    )
