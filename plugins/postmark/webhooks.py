"""Postmark webhooks: authenticated by basic auth or a secret path token, one record per request.

Postmark signs nothing, so the request must carry credentials only Postmark knows: the
``https://user:pass@…`` basic auth of the webhook URL (``[webhooks.postmark] username`` and
``password``) or a secret last path segment (``POST /webhooks/postmark/{path_token}``,
``[webhooks.postmark] path_token``). Correlation comes from ``X-PM-Metadata-*`` (``Metadata``).
Postmark bodies carry no signed timestamp, and Postmark posts the same test payload each time a
webhook is created or edited (and stops on a 4xx): an identical body is therefore applied once and
answered 200 again, not refused. Bounce records from before ``RecordType`` existed are bounces.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from pipeline.feedback.webhooks import (
    WebhookNotConfigured,
    WebhookPayloadError,
    WebhookRejected,
    WebhookSettings,
    classify_failure,
    equal,
    iso_time,
)
from pipeline.models import DeliveryEvent, RecipientEvent

from .presets import NAME

# Bounce `Type` → (event, reason hint, permanent); types not listed change nothing of ours
BOUNCE_TYPES: dict[str, tuple[RecipientEvent, str | None, bool]] = {
    "HardBounce": (RecipientEvent.BOUNCED, "user_unknown", True),
    "BadEmailAddress": (RecipientEvent.BOUNCED, "user_unknown", True),
    "SoftBounce": (RecipientEvent.BOUNCED, None, False),
    "DnsError": (RecipientEvent.BOUNCED, "host_unknown", False),
    "Blocked": (RecipientEvent.BOUNCED, "blocked", False),
    "DMARCPolicy": (RecipientEvent.BOUNCED, "auth_failure", False),
    "Transient": (RecipientEvent.DEFERRED, None, False),
    "SpamNotification": (RecipientEvent.BOUNCED, "spam_detected", False),
    "VirusNotification": (RecipientEvent.BOUNCED, "virus_detected", False),
    "SpamComplaint": (RecipientEvent.COMPLAINED, "feedback", True),
    "Unsubscribe": (RecipientEvent.UNSUBSCRIBED, "unsubscribed", True),
    "AutoResponder": (RecipientEvent.AUTORESPONDED, "vacation", False),
}
SUBSCRIPTION_REASONS: dict[str, tuple[RecipientEvent, str]] = {
    "ManualSuppression": (RecipientEvent.UNSUBSCRIBED, "unsubscribed"),
    "SpamComplaint": (RecipientEvent.COMPLAINED, "feedback"),
    "HardBounce": (RecipientEvent.BOUNCED, "user_unknown"),
}


def _basic_auth_ok(headers: dict[str, str], username: str, password: str) -> bool:
    value = headers.get("authorization", "")
    scheme, _, encoded = value.partition(" ")
    if scheme.lower() != "basic" or not encoded or len(encoded) > 1024:
        return False
    try:
        user, _, given = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, ValueError):
        return False
    return equal(user, username) & equal(given, password)  # both compared, always


def verify(headers: dict[str, str], body: bytes, settings: WebhookSettings) -> None:
    username, password, path_token = settings.secret("username"), settings.secret("password"), settings.secret("path_token")
    if not (username and password) and not path_token:
        raise WebhookNotConfigured("[webhooks.postmark] needs username and password, or path_token")
    by_auth = bool(username and password) and _basic_auth_ok(headers, username or "", password or "")
    by_path = bool(path_token) and settings.path_token is not None and equal(settings.path_token, path_token or "")
    if not (by_auth or by_path):
        if settings.path_token is not None and not path_token:
            raise WebhookRejected("postmark: a path token was given but [webhooks.postmark] path_token is not set")
        if "authorization" not in headers and not settings.path_token:
            raise WebhookRejected("postmark: no basic auth and no path token in the request")
        raise WebhookRejected("postmark: basic auth or path token does not match [webhooks.postmark]")


def _text(item: dict[str, Any], key: str, limit: int = 2000) -> str | None:
    value = item.get(key)
    return str(value)[:limit] if isinstance(value, (str, int)) and not isinstance(value, bool) and value != "" else None


def _obj(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def record_type(item: dict[str, Any]) -> str:
    """The record's kind; a Bounce when it predates ``RecordType`` (a bounce ``Type`` and ``BouncedAt``)."""
    record = item.get("RecordType")
    if isinstance(record, str) and record:
        return record
    if record is None and isinstance(item.get("Type"), str) and "BouncedAt" in item:
        return "Bounce"
    raise WebhookPayloadError("postmark: record has no RecordType and is not a bounce")


def to_event(item: dict[str, Any]) -> DeliveryEvent | None:
    record = record_type(item)
    metadata = _obj(item, "Metadata")
    reason: str | None = None
    status: str | None = None
    permanent = False
    diagnostic = _text(item, "Details") or _text(item, "Description") or ""
    details: dict[str, Any] = {k: item[k] for k in ("ID", "MessageID", "Type", "OriginalLink", "MessageStream") if k in item}
    when = iso_time(item.get("DeliveredAt") or item.get("BouncedAt") or item.get("ReceivedAt") or item.get("ChangedAt"))
    if record == "Delivery":
        kind, reason = RecipientEvent.DELIVERED, "delivered"
    elif record == "Bounce":
        # A type we do not know (Unknown, AddressChange, SMTPApiError, …) is still a failure: counted as soft
        kind, hint, permanent = BOUNCE_TYPES.get(str(item.get("Type")), (RecipientEvent.BOUNCED, None, False))
        if kind in (RecipientEvent.BOUNCED, RecipientEvent.DEFERRED):
            failure = classify_failure(diagnostic, hint=hint)
            reason, status = failure.reason, failure.status
        else:
            reason = hint
    elif record == "SpamComplaint":
        kind, reason, permanent = RecipientEvent.COMPLAINED, "feedback", True
    elif record == "Open":
        kind = RecipientEvent.OPENED
    elif record == "Click":
        kind = RecipientEvent.CLICKED
    elif record == "SubscriptionChange":
        change = SUBSCRIPTION_REASONS.get(str(item.get("SuppressionReason")))
        if change is None or item.get("SuppressSending") is not True:
            return None  # reactivated, or a reason we do not act on
        kind, reason = change
        permanent = True
    else:
        return None
    return DeliveryEvent(
        event=kind,
        tenant=str(metadata.get("tenant") or "default")[:64],
        event_id=str(metadata["event_id"])[:200] if metadata.get("event_id") else None,
        recipient=_text(item, "Recipient", 320) or _text(item, "Email", 320),
        provider=NAME,
        reason=reason,
        permanent=permanent,
        status=status,
        smtp_reply=diagnostic or None,
        occurred_at=when,
        details=details,
        raw=item,
    )


def parse_webhook(headers: dict[str, str], body: bytes, settings: WebhookSettings) -> list[DeliveryEvent]:
    verify(headers, body, settings)
    if not settings.first_delivery(hashlib.sha256(body).hexdigest(), NAME):
        return []  # the same record again (a test payload, a retry after a lost answer): applied once
    try:
        item = json.loads(body)
    except ValueError:
        raise WebhookPayloadError("postmark: body is not JSON") from None
    if not isinstance(item, dict):
        raise WebhookPayloadError("postmark: body must be a JSON object")
    event = to_event(item)
    return [event] if event is not None else []
