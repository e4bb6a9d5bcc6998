"""SendGrid Signed Event Webhook: ECDSA P-256 over timestamp + body, then the event array.

The verification key is the one SendGrid shows under Mail Settings → Signed Event Webhook
(base64 DER, ``[webhooks.sendgrid] public_key = "file:…"``; PEM works too). Correlation comes
from the ``X-SMTPAPI`` unique args our quirks set (``event_id``, ``tenant``), which SendGrid
echoes as top-level fields of every event.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

from pipeline.feedback.webhooks import WebhookPayloadError, WebhookRejected, WebhookSettings, classify_failure, numeric
from pipeline.models import DeliveryEvent, RecipientEvent

from .presets import NAME

SIGNATURE = "x-twilio-email-event-webhook-signature"
TIMESTAMP = "x-twilio-email-event-webhook-timestamp"

EVENTS: dict[str, RecipientEvent] = {
    "delivered": RecipientEvent.DELIVERED,
    "deferred": RecipientEvent.DEFERRED,
    "bounce": RecipientEvent.BOUNCED,
    "dropped": RecipientEvent.BOUNCED,
    "open": RecipientEvent.OPENED,
    "click": RecipientEvent.CLICKED,
    "spamreport": RecipientEvent.COMPLAINED,
    "unsubscribe": RecipientEvent.UNSUBSCRIBED,
    "group_unsubscribe": RecipientEvent.UNSUBSCRIBED,
}  # "processed" and "group_resubscribe" change nothing of ours

# SendGrid drops a message it will not send; its drop reason → (event, reason, permanent).
# "Invalid" means the address is on SendGrid's Invalid Emails list (malformed or nonexistent): it
# will never be sent to, so it is suppressed like an unknown user. Reasons about the message
# ("Invalid SMTPAPI header", "Spam Content") are not about the address: counted as soft.
DROPPED: dict[str, tuple[RecipientEvent, str, bool]] = {
    "bounced address": (RecipientEvent.BOUNCED, "user_unknown", True),
    "invalid": (RecipientEvent.BOUNCED, "user_unknown", True),
    "invalid email": (RecipientEvent.BOUNCED, "user_unknown", True),
    "unsubscribed address": (RecipientEvent.UNSUBSCRIBED, "unsubscribed", True),
    "spam reporting address": (RecipientEvent.COMPLAINED, "feedback", True),
}


def load_public_key(text: str) -> ec.EllipticCurvePublicKey:
    try:
        if "BEGIN PUBLIC KEY" in text:
            key = load_pem_public_key(text.encode())
        else:
            key = load_der_public_key(base64.b64decode("".join(text.split()), validate=True))
    except (ValueError, binascii.Error, TypeError):
        raise WebhookRejected("sendgrid: [webhooks.sendgrid] public_key is not a valid public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise WebhookRejected("sendgrid: [webhooks.sendgrid] public_key is not an ECDSA key")
    return key


def verify(headers: dict[str, str], body: bytes, settings: WebhookSettings) -> None:
    key = load_public_key(settings.require_secret(NAME, "public_key"))
    signature, stamp = headers.get(SIGNATURE), headers.get(TIMESTAMP)
    if not signature or not stamp:
        raise WebhookRejected("sendgrid: signature or timestamp header missing")
    timestamp = numeric(stamp)
    if timestamp is None:
        raise WebhookRejected("sendgrid: timestamp header is not a number")
    try:
        key.verify(base64.b64decode(signature, validate=True), stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, binascii.Error, ValueError):
        raise WebhookRejected("sendgrid: bad signature") from None
    settings.check_fresh(timestamp, NAME)
    settings.check_replay(hashlib.sha256(stamp.encode() + body).hexdigest(), NAME)


def parse(body: bytes) -> list[DeliveryEvent]:
    try:
        data = json.loads(body)
    except ValueError:
        raise WebhookPayloadError("sendgrid: body is not JSON") from None
    if not isinstance(data, list):
        raise WebhookPayloadError("sendgrid: body must be a JSON array of events")
    return [event for item in data if isinstance(item, dict) and (event := to_event(item)) is not None]


def _text(item: dict[str, Any], key: str) -> str | None:
    value = item.get(key)
    return str(value)[:2000] if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None


def to_event(item: dict[str, Any]) -> DeliveryEvent | None:
    kind = EVENTS.get(str(item.get("event", "")))
    if kind is None:
        return None
    reason: str | None = None
    status = _text(item, "status")
    permanent = False
    details: dict[str, Any] = {k: item[k] for k in ("sg_event_id", "sg_message_id", "url", "useragent", "attempt") if k in item}
    diagnostic = _text(item, "reason") or _text(item, "response") or ""
    if item.get("event") == "dropped":
        kind, reason, permanent = DROPPED.get(diagnostic.strip().lower(), (RecipientEvent.BOUNCED, "rejected", False))
    elif kind in (RecipientEvent.BOUNCED, RecipientEvent.DEFERRED):
        failure = classify_failure(diagnostic, status=status)
        reason, status = failure.reason, failure.status
        permanent = kind == RecipientEvent.BOUNCED and item.get("type") != "blocked"
        details["bounce_type"] = item.get("type")
    elif kind == RecipientEvent.COMPLAINED:
        reason = "feedback"
    elif kind == RecipientEvent.DELIVERED:
        reason = "delivered"
    return DeliveryEvent(
        event=kind,
        tenant=_text(item, "tenant") or "default",
        event_id=_text(item, "event_id"),
        message_id=_text(item, "smtp-id"),
        recipient=_text(item, "email"),
        provider=NAME,
        reason=reason,
        permanent=permanent,
        status=status,
        smtp_reply=diagnostic or None,
        occurred_at=numeric(item.get("timestamp")),
        details=details,
        raw=item,
    )


def parse_webhook(headers: dict[str, str], body: bytes, settings: WebhookSettings) -> list[DeliveryEvent]:
    verify(headers, body, settings)
    return parse(body)
