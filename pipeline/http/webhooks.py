"""``POST /webhooks/{provider}``: the provider's plugin verifies and parses, the core applies.

Nothing in a request is trusted before the plugin's ``mailpipe_parse_webhook`` has checked its
signature or credentials: unsigned, mis-signed, stale or replayed requests get 401 and change
nothing; oversized ones get 413 before the plugin sees a byte. The answer never says why a request
was refused (that would help a forger); the log line does, precisely.

A request's replay keys are released when its events could not be applied (the plugin raised
after claiming them, or applying failed with a 5xx), so the provider's retry is applied, not
refused as a replay.
"""

from __future__ import annotations

import pathlib
from typing import Annotated

import httpx
import structlog
from fastapi import APIRouter, HTTPException, Path, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from pipeline.feedback.webhooks import WebhookNotConfigured, WebhookPayloadError, WebhookRejected, WebhookSettings
from pipeline.http.bodies import BodyTooLarge, read_body
from pipeline.http.certificates import CertificateDirectory
from pipeline.http.instruments import WEBHOOK_REQUESTS
from pipeline.http.schemas import Problem, WebhookResult
from pipeline.http.state import ServeState
from pipeline.http.subscriptions import PendingSubscriptions
from pipeline.models import DeliveryEvent

log = structlog.get_logger("mailpipe.http.webhooks")
router = APIRouter(tags=["webhooks"])
Provider = Annotated[
    str, Path(pattern=r"^[a-z0-9_-]{1,40}$", description="the provider plugin's name: sendgrid, mailgun, ses, postmark")
]
PathToken = Annotated[str, Path(min_length=1, max_length=200, description="secret path segment (Postmark)")]
RESPONSES: dict[int | str, dict[str, object]] = {
    400: {"model": Problem, "description": "authentic but unreadable payload"},
    401: {"model": Problem, "description": "not authentic: signature, credentials, timestamp or replay"},
    404: {"model": Problem, "description": "no plugin handles this provider"},
    413: {"model": Problem, "description": "body larger than max_body_bytes"},
}


def _parse(
    state: ServeState, provider: str, headers: dict[str, str], body: bytes, settings: WebhookSettings
) -> list[DeliveryEvent] | None:
    result: list[DeliveryEvent] | None = state.pm.hook.mailpipe_parse_webhook(
        provider=provider, headers=headers, body=body, settings=settings
    )
    return result


def _confirm(urls: list[str]) -> str:
    for url in urls:
        httpx.get(url, timeout=10, follow_redirects=False).raise_for_status()
    return "confirmed"


async def handle(request: Request, provider: str, path_token: str | None) -> WebhookResult:
    state: ServeState = request.app.state.serve
    try:
        body = await read_body(request, state.config.serve.max_body_bytes)
    except BodyTooLarge:
        WEBHOOK_REQUESTS.labels(provider if provider in state.webhook_options else "unknown", "too_large").inc()
        raise
    options = state.webhook_options.get(provider, {})
    certificates_dir = options.get("certificates_dir")
    settings = WebhookSettings(
        options=options,
        replay_window=state.config.webhooks.replay_window,
        now=state.clock(),
        seen=state.replay.seen,
        release=state.replay.release,
        certificates=(
            CertificateDirectory(pathlib.Path(state.config.base_dir) / certificates_dir)
            if isinstance(certificates_dir, str)
            else state.certificates
        ),
        path_token=path_token,
    )
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    try:
        events = await run_in_threadpool(_parse, state, provider, headers, body, settings)
        report = await run_in_threadpool(state.feedback.apply, events, "webhook") if events is not None else None
    except (WebhookRejected, WebhookNotConfigured) as exc:
        await run_in_threadpool(settings.release_claims)
        WEBHOOK_REQUESTS.labels(provider, "rejected").inc()
        not_configured = isinstance(exc, WebhookNotConfigured)
        log.warning("webhook_rejected", provider=provider, reason=str(exc), not_configured=not_configured)
        raise HTTPException(401, "webhook not authentic") from None
    except (WebhookPayloadError, ValidationError) as exc:
        await run_in_threadpool(settings.release_claims)
        WEBHOOK_REQUESTS.labels(provider, "invalid").inc()
        log.warning("webhook_invalid", provider=provider, reason=str(exc)[:300])
        raise HTTPException(400, "webhook payload not understood") from None
    except BaseException:
        await run_in_threadpool(settings.release_claims)
        WEBHOOK_REQUESTS.labels(provider, "failed").inc()
        raise
    if events is None or report is None:
        WEBHOOK_REQUESTS.labels("unknown", "unknown_provider").inc()
        raise HTTPException(404, "no plugin handles this provider")
    WEBHOOK_REQUESTS.labels(provider, "accepted").inc()
    subscription = None
    if settings.subscribe_urls:
        subscription = await _subscription(state, provider, options, settings)
    return WebhookResult(received=len(events), applied=report.applied, unmatched=report.unmatched, subscription=subscription)


async def _subscription(state: ServeState, provider: str, options: dict[str, object], settings: WebhookSettings) -> str:
    """Confirm a verified SNS subscription when told to; otherwise log and keep its URL for the operator."""
    if options.get("confirm_subscriptions") is True:
        try:
            status = await run_in_threadpool(_confirm, settings.subscribe_urls)
        except httpx.HTTPError as exc:
            await run_in_threadpool(settings.release_claims)  # SNS resends the confirmation; let it in
            url = settings.subscribe_urls[0]
            log.warning("sns_subscription_failed", provider=provider, subscribe_url=url, error=type(exc).__name__)
            raise HTTPException(502, "subscription confirmation failed") from None
        log.info("sns_subscription", provider=provider, status=status)
        return status
    pending = PendingSubscriptions(state.client)
    for url in settings.subscribe_urls:
        await run_in_threadpool(pending.add, url, settings.now)
        log.warning(
            "sns_subscription_pending",
            provider=provider,
            subscribe_url=url,
            hint="open subscribe_url to confirm (or run `mailpipe webhooks pending`), or set confirm_subscriptions = true",
        )
    return "pending"


@router.post("/webhooks/{provider}", summary="A provider's delivery events", response_model=WebhookResult, responses=RESPONSES)
async def provider_webhook(request: Request, provider: Provider) -> WebhookResult:
    return await handle(request, provider, None)


@router.post(
    "/webhooks/{provider}/{path_token}",
    summary="A provider's delivery events, authenticated by a secret path segment",
    response_model=WebhookResult,
    responses=RESPONSES,
)
async def provider_webhook_with_token(request: Request, provider: Provider, path_token: PathToken) -> WebhookResult:
    return await handle(request, provider, path_token)
