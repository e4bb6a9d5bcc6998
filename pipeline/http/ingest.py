"""``POST /v1/events`` (one event or a batch) and ``GET /v1/events/{event_id}`` for upstreams in any language."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from pipeline.http.bodies import read_body
from pipeline.http.instruments import INGEST_EVENTS
from pipeline.http.schemas import EventStatusOut, IngestResult, ItemErrorOut, Problem
from pipeline.http.state import ServeState

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


BEARER = HTTPBearer(auto_error=False, description="one of [serve] ingest_tokens")


def require_token(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]) -> ServeState:
    state = state_of(request)
    if credentials is None or not credentials.credentials or not state.token_allowed(credentials.credentials):
        raise HTTPException(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})
    return state


Authorized = Annotated[ServeState, Depends(require_token)]


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
        413: {"model": Problem, "description": "body larger than max_body_bytes, or more events than max_batch"},
        422: {"model": IngestResult | Problem, "description": "no valid event in the request (or a body that is not JSON)"},
    },
)
async def submit_events(request: Request, state: Authorized) -> JSONResponse:
    """Validate each event as ``mailpipe submit`` does: valid ones are accepted (idempotent on
    ``event_id``: a resubmitted event is reported under ``duplicates`` and never sent twice),
    invalid ones are listed with their index and errors."""
    body = await read_body(request, state.config.serve.max_body_bytes)
    items = _items(body)
    if len(items) > state.config.serve.max_batch:
        raise HTTPException(413, f"at most {state.config.serve.max_batch} events per request")
    report = await run_in_threadpool(state.submitter.submit, items, source="http")
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
    responses={401: UNAUTHORIZED, 404: {"model": Problem, "description": "no such event in this tenant"}},
)
def get_event(
    state: Authorized,
    event_id: Annotated[str, Path(min_length=1, max_length=200)],
    tenant: Annotated[str, Query(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] = "default",
) -> EventStatusOut:
    status = state.status.get(tenant, event_id)
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
