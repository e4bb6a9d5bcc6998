"""Amazon SES events through SNS: SNS message signature, topic allow-list, SES event → our events.

Checks, in order: the ``SigningCertURL`` is https on ``sns.<region>.amazonaws.com`` and names a
``.pem``; the topic is one of ``[webhooks.ses] topic_arns`` (an SNS signature only proves SNS
sent it, not that it is *our* topic); the signature (v1 SHA1 / v2 SHA256, RSA PKCS#1 v1.5) over
the canonical string with the certificate from the host's certificate source (fetched once,
cached, or read from ``[webhooks.ses] certificates_dir``) and inside its validity dates; the
``Timestamp`` within the window; the ``MessageId`` not seen before. A verified
``SubscriptionConfirmation`` only reports its ``SubscribeURL``: the host confirms it when told to.
Correlation: the ``X-SES-MESSAGE-TAGS`` our quirks set come back as ``mail.tags``.

AWS's rule for a ``Permanent`` bounce is "remove the address": with no diagnostic saying
otherwise (SES often sends none), a permanent General/NoEmail/suppression-list bounce is hard.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from pipeline.feedback.webhooks import (
    WebhookNotConfigured,
    WebhookPayloadError,
    WebhookRejected,
    WebhookSettings,
    classify_failure,
    iso_time,
)
from pipeline.models import DeliveryEvent, RecipientEvent

from .presets import NAME

SNS_HOST = re.compile(r"^sns\.[a-z0-9-]{1,40}\.amazonaws\.com(\.cn)?$")
NOTIFICATION_KEYS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
SUBSCRIPTION_KEYS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
HASHES: dict[str, type[hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}

BOUNCE_SUBTYPES: dict[str, str] = {
    "NoEmail": "user_unknown",
    "Suppressed": "user_unknown",  # on SES's global suppression list: it hard-bounced recently
    "OnAccountSuppressionList": "user_unknown",
    "MailboxFull": "mailbox_full",
    "MessageTooLarge": "mesg_too_big",
    "ContentRejected": "content_error",
    "AttachmentRejected": "content_error",
}


def check_url(url: object, what: str) -> str:
    if not isinstance(url, str) or len(url) > 2048:
        raise WebhookRejected(f"ses: {what} missing")
    parts = urlsplit(url)
    if parts.scheme != "https" or not SNS_HOST.match(parts.hostname or "") or parts.port not in (None, 443):
        raise WebhookRejected(f"ses: {what} is not on sns.<region>.amazonaws.com over https")
    return url


def string_to_sign(message: dict[str, Any]) -> bytes:
    names = NOTIFICATION_KEYS if message.get("Type") == "Notification" else SUBSCRIPTION_KEYS
    lines = []
    for name in names:
        value = message.get(name)
        if value is None and name == "Subject":
            continue
        if not isinstance(value, str):
            raise WebhookRejected(f"ses: {name} missing from the SNS message")
        lines.append(f"{name}\n{value}\n")
    return "".join(lines).encode()


# Permanent subtypes that say the address itself is bad; the others (content, size) are about the message
ADDRESS_SUBTYPES = frozenset({"General", "NoEmail", "Suppressed", "OnAccountSuppressionList"})
# What a diagnostic may say without contradicting "permanent: remove the address"
NO_EVIDENCE = frozenset({"undefined", "on_hold"})


def _public_key(pem: bytes, now: float) -> rsa.RSAPublicKey:
    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise WebhookRejected("ses: signing certificate unreadable") from None
    moment = datetime.fromtimestamp(now, UTC)
    if moment < certificate.not_valid_before_utc:
        raise WebhookRejected(f"ses: signing certificate not valid before {certificate.not_valid_before_utc:%Y-%m-%d}")
    if moment > certificate.not_valid_after_utc:
        raise WebhookRejected(f"ses: signing certificate expired on {certificate.not_valid_after_utc:%Y-%m-%d}")
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise WebhookRejected("ses: signing certificate has no RSA key")
    return key


def _timestamp(value: object) -> float:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise WebhookRejected("ses: Timestamp unreadable") from None


def verify(message: dict[str, Any], settings: WebhookSettings) -> None:
    topics = settings.options.get("topic_arns")
    if not isinstance(topics, list) or not topics:
        raise WebhookNotConfigured("[webhooks.ses] topic_arns is not configured")
    if settings.certificates is None:
        raise WebhookNotConfigured("ses: no certificate source")
    algorithm = HASHES.get(str(message.get("SignatureVersion")))
    if algorithm is None:
        raise WebhookRejected("ses: unknown SignatureVersion")
    cert_url = check_url(message.get("SigningCertURL"), "SigningCertURL")
    if not urlsplit(cert_url).path.endswith(".pem"):
        raise WebhookRejected("ses: SigningCertURL does not name a .pem certificate")
    if message.get("TopicArn") not in topics:
        raise WebhookRejected("ses: topic not in [webhooks.ses] topic_arns")
    try:
        signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
    except (binascii.Error, ValueError):
        raise WebhookRejected("ses: Signature is not base64") from None
    key = _public_key(settings.certificates(cert_url), settings.now)
    try:
        key.verify(signature, string_to_sign(message), padding.PKCS1v15(), algorithm())
    except InvalidSignature:
        raise WebhookRejected("ses: bad signature") from None
    settings.check_fresh(_timestamp(message.get("Timestamp")), NAME)
    settings.check_replay(str(message.get("MessageId")), NAME)


def _obj(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _strs(data: dict[str, Any], key: str) -> list[str]:
    value = data.get(key)
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _dicts(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = data.get(key)
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _str(data: dict[str, Any], key: str, limit: int = 2000) -> str | None:
    value = data.get(key)
    return value[:limit] if isinstance(value, str) and value else None


def _first_tag(tags: dict[str, Any], name: str) -> str | None:
    values = tags.get(name)
    return str(values[0])[:200] if isinstance(values, list) and values else None


def _failure_event(
    kind: RecipientEvent, r: dict[str, Any], hint: str | None, common: dict[str, Any], *, address_bad: bool = False
) -> DeliveryEvent:
    diagnostic = _str(r, "diagnosticCode") or ""
    failure = classify_failure(diagnostic, status=_str(r, "status", 20), hint=hint)
    reason = failure.reason
    if address_bad and reason in NO_EVIDENCE:
        reason = "user_unknown"  # SES says permanent and nothing in the mail says otherwise
    return DeliveryEvent(
        event=kind,
        recipient=_str(r, "emailAddress", 320),
        reason=reason,
        status=failure.status,
        smtp_reply=diagnostic or None,
        **common,
    )


def events_of(ses: dict[str, Any]) -> list[DeliveryEvent]:
    """One SES event (event publishing ``eventType`` or notification ``notificationType``)."""
    kind = str(ses.get("eventType") or ses.get("notificationType") or "")
    mail = _obj(ses, "mail")
    tags = _obj(mail, "tags")
    common: dict[str, Any] = {
        "tenant": _first_tag(tags, "tenant") or "default",
        "event_id": _first_tag(tags, "event_id"),
        "message_id": _str(_obj(mail, "commonHeaders"), "messageId", 998),
        "provider": NAME,
        "raw": ses,
    }
    details: dict[str, Any] = {"ses_message_id": mail.get("messageId")}
    reader = _strs(mail, "destination")[:1]
    section = _obj(ses, kind[:1].lower() + kind[1:])  # "bounce", "deliveryDelay", "open", …
    common["occurred_at"] = iso_time(section.get("timestamp")) or iso_time(mail.get("timestamp"))
    if kind == "Bounce":
        bounce = section
        permanent = bounce.get("bounceType") == "Permanent"
        subtype = str(bounce.get("bounceSubType"))
        hint = BOUNCE_SUBTYPES.get(subtype) if permanent else None
        address_bad = permanent and subtype in ADDRESS_SUBTYPES
        about = {**details, "bounce_type": bounce.get("bounceType"), "bounce_subtype": bounce.get("bounceSubType")}
        return [
            _failure_event(
                RecipientEvent.BOUNCED, r, hint, {**common, "permanent": permanent, "details": about}, address_bad=address_bad
            )
            for r in _dicts(bounce, "bouncedRecipients")
        ]
    if kind == "DeliveryDelay":
        delay = _obj(ses, "deliveryDelay")
        about = {**details, "delay_type": delay.get("delayType")}
        return [
            _failure_event(RecipientEvent.DEFERRED, r, None, {**common, "details": about})
            for r in _dicts(delay, "delayedRecipients")
        ]
    if kind == "Complaint":
        complaint = _obj(ses, "complaint")
        about = {**details, "feedback_type": complaint.get("complaintFeedbackType")}
        return [
            DeliveryEvent(
                event=RecipientEvent.COMPLAINED,
                recipient=_str(r, "emailAddress", 320),
                reason="feedback",
                details=about,
                **common,
            )
            for r in _dicts(complaint, "complainedRecipients")
        ]
    if kind == "Delivery":
        delivery = _obj(ses, "delivery")
        reply = _str(delivery, "smtpResponse")
        return [
            DeliveryEvent(
                event=RecipientEvent.DELIVERED, recipient=r, reason="delivered", smtp_reply=reply, details=details, **common
            )
            for r in _strs(delivery, "recipients")
        ]
    if kind in ("Open", "Click"):
        link = _str(_obj(ses, kind.lower()), "link")
        event = RecipientEvent.OPENED if kind == "Open" else RecipientEvent.CLICKED
        about = {**details, "url": link} if link else details
        return [DeliveryEvent(event=event, recipient=r, details=about, **common) for r in reader]
    if kind == "Subscription":
        preferences = _obj(section, "newTopicPreferences")
        if not opted_out(preferences):
            return []  # an opt-in, or one topic among others left: not an unsubscribe from all mail
        about = {**details, "contact_list": section.get("contactList"), "source": section.get("source")}
        return [
            DeliveryEvent(event=RecipientEvent.UNSUBSCRIBED, recipient=r, reason="unsubscribed", details=about, **common)
            for r in reader
        ]
    return []  # Send, Reject, RenderingFailure: nothing happened to a recipient after our send


def opted_out(preferences: dict[str, Any]) -> bool:
    """SES ``newTopicPreferences``: out of everything (``unsubscribeAll``), or out of every topic listed."""
    if preferences.get("unsubscribeAll") is True:
        return True
    topics = _dicts(preferences, "topicSubscriptionStatus")
    return bool(topics) and all(t.get("subscriptionStatus") == "OptOut" for t in topics)


def parse_webhook(headers: dict[str, str], body: bytes, settings: WebhookSettings) -> list[DeliveryEvent]:
    try:
        message = json.loads(body)
    except ValueError:
        raise WebhookRejected("ses: body is not an SNS message") from None
    if not isinstance(message, dict):
        raise WebhookRejected("ses: body is not an SNS message")
    verify(message, settings)
    kind = message.get("Type")
    if kind == "SubscriptionConfirmation":
        settings.subscribe_urls.append(check_url(message.get("SubscribeURL"), "SubscribeURL"))
        return []
    if kind != "Notification":
        return []  # UnsubscribeConfirmation: nothing to apply
    try:
        ses = json.loads(message["Message"])
    except ValueError:
        raise WebhookPayloadError("ses: notification Message is not JSON") from None
    if not isinstance(ses, dict):
        raise WebhookPayloadError("ses: notification Message is not a JSON object")
    return events_of(ses)
