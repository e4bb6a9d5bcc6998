"""``GET /c/{token}`` records a click and redirects; ``GET /o/{token}`` records an open (1x1 GIF).

The redirect target comes only from a token whose MAC verified, and must be http(s): an edited
or invented token is a 404, so the tracking domain can never be used as an open redirect.
A recording failure (Redis away) still redirects: the reader should not pay for it.
"""

from __future__ import annotations

import base64
from typing import Annotated

import structlog
from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from pipeline.feedback.tokens import BadToken, LinkToken, TokenKind
from pipeline.http.instruments import BAD_LINKS
from pipeline.http.state import ServeState
from pipeline.models import DeliveryEvent, RecipientEvent

log = structlog.get_logger("mailpipe.http.click")
router = APIRouter(tags=["tracking"])
Token = Annotated[str, Path(min_length=1, max_length=8192)]
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_STORE = {"Cache-Control": "no-store, private", "Referrer-Policy": "no-referrer"}


def _verified(request: Request, token: str, kind: TokenKind, label: str) -> LinkToken:
    state: ServeState = request.app.state.serve
    try:
        if state.signer is None:
            raise BadToken("no secret configured")
        link = state.signer.verify(token, kind)
    except BadToken:
        BAD_LINKS.labels(label).inc()
        raise HTTPException(404, "unknown link") from None
    return link


def _record(state: ServeState, event: DeliveryEvent, source: str) -> None:
    try:
        state.feedback.apply([event], source)
    except Exception as exc:  # the reader still gets where they were going
        log.error("tracking_record_failed", source=source, error=type(exc).__name__)


@router.get(
    "/c/{token}",
    summary="Record a click and redirect to the original link",
    status_code=302,
    response_class=RedirectResponse,
    responses={302: {"description": "redirect to the link in the mail"}, 404: {"description": "unknown link"}},
)
async def click(request: Request, token: Token) -> RedirectResponse:
    link = _verified(request, token, TokenKind.CLICK, "click")
    url = link.url or ""
    if not url.lower().startswith(("http://", "https://")) or any(ch.isspace() or ord(ch) < 32 for ch in url):
        BAD_LINKS.labels("click").inc()
        raise HTTPException(404, "unknown link")
    event = DeliveryEvent(event=RecipientEvent.CLICKED, tenant=link.tenant, event_id=link.event_id, details={"url": url[:2000]})
    await run_in_threadpool(_record, request.app.state.serve, event, "click")
    return RedirectResponse(url, status_code=302, headers=NO_STORE)


@router.get(
    "/o/{token}",
    summary="Record an open (tracking pixel)",
    response_class=Response,
    responses={200: {"content": {"image/gif": {}}, "description": "a 1x1 transparent GIF"}, 404: {"description": "unknown link"}},
)
async def open_pixel(request: Request, token: Token) -> Response:
    link = _verified(request, token, TokenKind.OPEN, "open")
    event = DeliveryEvent(event=RecipientEvent.OPENED, tenant=link.tenant, event_id=link.event_id)
    await run_in_threadpool(_record, request.app.state.serve, event, "open")
    return Response(PIXEL, media_type="image/gif", headers=NO_STORE)
