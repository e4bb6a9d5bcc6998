"""Mailgun webhooks: HMAC-SHA256 of timestamp + token with the webhook signing key.

Mailgun signs only ``timestamp + token``, not the body, so a captured signature could carry any
body: the token is therefore single-use (replay cache) and the timestamp must be recent.
Correlation comes from ``X-Mailgun-Variables``, echoed as ``user-variables`` on every event.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from pipeline.feedback.webhooks import (
    WebhookPayloadError,
    WebhookRejected,
    WebhookSettings,
    classify_failure,
    equal,
    numeric,
)
from pipeline.models import DeliveryEvent, RecipientEvent

from .presets import NAME

EVENTS: dict[str, RecipientEvent] = {
    "delivered": RecipientEvent.DELIVERED,
    "failed": RecipientEvent.BOUNCED,  # severity temporary → deferred, below
    "rejected": RecipientEvent.BOUNCED,
    "opened": RecipientEvent.OPENED,
    "clicked": RecipientEvent.CLICKED,
    "unsubscribed": RecipientEvent.UNSUBSCRIBED,
    "complained": RecipientEvent.COMPLAINED,
}  # "accepted" and "stored" change nothing of ours

# Mailgun's failure `reason` for messages it never tried: it suppressed the address itself
SUPPRESSION_REASONS: dict[str, str] = {
    "suppress-bounce": "user_unknown",
    "suppress-complaint": "feedback",
    "suppress-unsubscribe": "unsubscribed",
}


def _load(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        raise WebhookRejected("mailgun: body is not JSON, so it carries no signature") from None
    if not isinstance(data, dict):
        raise WebhookRejected("mailgun: body is not a JSON object")
    return data


def verify(data: dict[str, Any], settings: WebhookSettings) -> None:
    key = settings.require_secret(NAME, "signing_key")
    signed = data.get("signature")
    if not isinstance(signed, dict):
        raise WebhookRejected("mailgun: signature missing")
    timestamp, token, signature = signed.get("timestamp"), signed.get("token"), signed.get("signature")
    if not (isinstance(timestamp, str) and isinstance(token, str) and isinstance(signature, str)):
        raise WebhookRejected("mailgun: signature incomplete")
    if not all(0 < len(v) <= 256 for v in (timestamp, token, signature)):
        raise WebhookRejected("mailgun: signature incomplete")
    expected = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    if not equal(expected, signature.lower()):
        raise WebhookRejected("mailgun: bad signature")
    moment = numeric(timestamp)
    if moment is None:
        raise WebhookRejected("mailgun: timestamp is not a number")
    settings.check_fresh(moment, NAME)
    settings.check_replay(token, NAME)


def _obj(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def to_event(data: dict[str, Any]) -> DeliveryEvent | None:
    item = data.get("event-data")
    if not isinstance(item, dict):
        raise WebhookPayloadError("mailgun: event-data missing")
    kind = EVENTS.get(str(item.get("event", "")))
    if kind is None:
        return None
    variables = _obj(item, "user-variables")
    message = _obj(item, "message")
    headers = _obj(message, "headers")
    delivery = _obj(item, "delivery-status")
    diagnostic = " ".join(str(delivery.get(k) or "") for k in ("message", "description")).strip()[:2000]
    code = delivery.get("code") if isinstance(delivery.get("code"), int) else None
    reason: str | None = None
    status: str | None = None
    permanent = False
    if kind == RecipientEvent.BOUNCED:
        temporary = item.get("severity") == "temporary"
        kind = RecipientEvent.DEFERRED if temporary else RecipientEvent.BOUNCED
        hint = SUPPRESSION_REASONS.get(str(item.get("reason", "")))
        failure = classify_failure(diagnostic, code=code, hint=hint)
        reason, status, permanent = failure.reason, failure.status, not temporary
    elif kind == RecipientEvent.COMPLAINED:
        reason = "feedback"
    elif kind == RecipientEvent.DELIVERED:
        reason = "delivered"
    details = {k: item[k] for k in ("id", "url", "reason", "severity", "log-level") if k in item}
    if code is not None:
        details["code"] = code
    return DeliveryEvent(
        event=kind,
        tenant=str(variables.get("tenant") or "default")[:64],
        event_id=str(variables["event_id"])[:200] if variables.get("event_id") else None,
        message_id=_message_id(headers.get("message-id")),
        recipient=str(item["recipient"])[:320] if isinstance(item.get("recipient"), str) else None,
        provider=NAME,
        reason=reason,
        permanent=permanent,
        status=status,
        smtp_reply=diagnostic or None,
        occurred_at=numeric(item.get("timestamp")),
        details=details,
        raw=item,
    )


def _message_id(value: object) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    return value if value.startswith("<") else f"<{value}>"


def parse_webhook(headers: dict[str, str], body: bytes, settings: WebhookSettings) -> list[DeliveryEvent]:
    data = _load(body)
    verify(data, settings)
    event = to_event(data)
    return [event] if event is not None else []
