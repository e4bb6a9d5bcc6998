"""``GET|POST /u/{token}``: RFC 8058 one-click unsubscribe.

POST unsubscribes at once (what a mail client's one-click button sends:
``List-Unsubscribe=One-Click``); GET only shows a confirmation page with that same POST as a
button, because link scanners and previews fetch GET URLs on their own.
"""

from __future__ import annotations

import html
from typing import Annotated

import structlog
from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from pipeline.feedback.tokens import BadToken, LinkToken, TokenKind
from pipeline.http.bodies import read_body
from pipeline.http.instruments import BAD_LINKS
from pipeline.http.state import ServeState
from pipeline.models import DeliveryEvent, RecipientEvent

log = structlog.get_logger("mailpipe.http.unsubscribe")
router = APIRouter(tags=["unsubscribe"])
Token = Annotated[str, Path(min_length=1, max_length=8192)]
MAX_FORM_BYTES = 16_000
NO_STORE = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex", "Referrer-Policy": "no-referrer"}
PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{title}</title></head><body style="font-family:sans-serif;max-width:32em;margin:3em auto">{content}</body></html>"""


def verified(request: Request, token: str) -> LinkToken:
    state: ServeState = request.app.state.serve
    try:
        if state.signer is None:
            raise BadToken("no secret configured")
        link = state.signer.verify(token, TokenKind.UNSUBSCRIBE)
    except BadToken:
        BAD_LINKS.labels("unsubscribe").inc()
        raise HTTPException(404, "unknown link") from None
    if not link.address:
        BAD_LINKS.labels("unsubscribe").inc()
        raise HTTPException(404, "unknown link")
    return link


@router.get(
    "/u/{token}",
    summary="Unsubscribe confirmation page",
    response_class=HTMLResponse,
    responses={404: {"description": "unknown link"}},
)
def confirm_page(request: Request, token: Token) -> HTMLResponse:
    link = verified(request, token)
    content = (
        f"<h1>Unsubscribe</h1><p>Stop sending email to <b>{html.escape(link.address or '')}</b>?</p>"
        f'<form method="post" action="{html.escape(token)}"><input type="hidden" name="List-Unsubscribe" value="One-Click">'
        '<button type="submit">Unsubscribe</button></form>'
    )
    return HTMLResponse(PAGE.format(title="Unsubscribe", content=content), headers=NO_STORE)


@router.post(
    "/u/{token}",
    summary="One-click unsubscribe (RFC 8058)",
    response_class=HTMLResponse,
    responses={404: {"description": "unknown link"}, 413: {"description": "body too large"}},
)
async def unsubscribe(request: Request, token: Token) -> HTMLResponse:
    link = verified(request, token)
    await read_body(request, MAX_FORM_BYTES)  # the form says List-Unsubscribe=One-Click; the signed token is what counts
    state: ServeState = request.app.state.serve
    event = DeliveryEvent(
        event=RecipientEvent.UNSUBSCRIBED,
        tenant=link.tenant,
        event_id=link.event_id,
        recipient=link.address,
        reason="unsubscribed",
    )
    await run_in_threadpool(state.feedback.apply, [event], "unsubscribe")
    log.info("unsubscribed", tenant=link.tenant, event_id=link.event_id)
    content = "<h1>Unsubscribed</h1><p>You will not receive these emails any more.</p>"
    return HTMLResponse(PAGE.format(title="Unsubscribed", content=content), headers=NO_STORE)
