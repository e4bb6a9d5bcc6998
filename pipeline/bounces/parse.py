"""parse_bounce: any mail in, a BounceReport out — never an exception."""

from __future__ import annotations

import logging
import re
from email.message import Message

from pipeline.bounces.classify import classify
from pipeline.bounces.collect import Collected, collect, original_recipient
from pipeline.bounces.families import detect
from pipeline.bounces.families.ses import SES, kind_of, load_notification, message_id
from pipeline.bounces.forwarded import inline_forwards
from pipeline.bounces.mime import MailView, build_view, load_message
from pipeline.bounces.nonbounce import autoreply_address, bounce_evidence, feedback_addresses, is_autoreply, is_feedback
from pipeline.bounces.report import BounceCategory, BouncedRecipient, BounceKind, BounceReport
from pipeline.bounces.textscan import cut_original
from pipeline.observe import metrics

log = logging.getLogger(__name__)
MAX_NESTING = 3
_ANGLE_ID = re.compile(r"<[^<>\s]+>")
_MESSAGE_ID = re.compile(r"^\s*Message-I[Dd]\s*:\s*(<[^<>\s]+>|[^\s<>]+@[^\s<>]+)", re.I | re.M)


def parse_bounce(raw: bytes | str | Message) -> BounceReport:
    """Classify a bounce, DSN, auto-reply or complaint mail; ordinary mail is `not_bounce`.

    Malformed mail never raises. A bug in the parser does not raise either (one bad mail must not
    stop an inbox poll), but it is not disguised as "not a bounce": the report carries
    `internal_error`, the error is logged with its traceback and counted.
    """
    try:
        return _parse(load_message(raw), depth=0)
    except Exception as exc:
        log.error("bounce_parse_internal_error", exc_info=True, extra={"error_type": type(exc).__name__})
        metrics.bounce_parse_internal_error()
        return BounceReport(internal_error=True)


def _parse(message: Message, depth: int) -> BounceReport:
    view = build_view(message)
    marker_text = "\n".join(view.texts + view.dsn_texts)
    family, score = detect(view, marker_text)
    if is_feedback(view):
        return _feedback(view, feedback_addresses(view), family_name="arf")
    notification = load_notification(view.body_text) if family is SES or '"notificationType"' in view.body_text else None
    if notification and kind_of(notification) == "complaint":
        addresses = [f.address for f in SES.custom(view)] if SES.custom else []
        return _feedback(view, addresses, family_name=SES.name, message_id=message_id(notification))
    collected = collect(view, family)
    evidence = bounce_evidence(view)
    strong = (
        bool(collected.failed and (collected.from_dsn or notification))
        or bool(view.header("x-failed-recipients"))
        or score >= 2
        or "delivery-status" in view.header("content-type").lower()
    )
    if not strong and is_autoreply(view):
        return _autoreply(view)
    if not collected.failed and collected.delivered:
        return _delivered(view, collected, family.name if family else None)
    looks_like_bounce = (
        strong
        or evidence >= 2
        or (evidence + score >= 1 and collected.scan is not None and collected.scan.strong and collected.failed)
    )
    if not looks_like_bounce or not collected.failed:
        nested = _nested(view, depth)
        if nested is not None:
            return nested
    if not looks_like_bounce:
        return BounceReport.not_bounce(BounceCategory.UNKNOWN)
    if not collected.failed:
        fallback = original_recipient(view)
        if fallback is not None:
            fallback.context = collected.scan.region if collected.scan else ""
            collected.failed = [fallback]
    recipients = [classify(f, family) for f in collected.failed]
    return _bounce_report(view, recipients, family.name if family else None, notification)


def _bounce_report(view: MailView, recipients: list[BouncedRecipient], family: str | None, notification: object) -> BounceReport:
    first = recipients[0] if recipients else None
    msgid = message_id(notification) if isinstance(notification, dict) else None
    return BounceReport(
        is_bounce=True,
        kind=first.kind if first else BounceKind.SOFT,
        reason=first.reason if first else "undefined",
        status=first.status if first else None,
        category=BounceCategory.BOUNCE,
        recipients=recipients,
        original_message_id=msgid or original_message_id(view),
        family=family,
        subject=view.subject or None,
    )


def _nested(view: MailView, depth: int) -> BounceReport | None:
    """A bounce forwarded as an attachment (message/rfc822) is read from inside."""
    if depth >= MAX_NESTING:
        return None
    for original in [*view.originals[:3], *inline_forwards(view)]:
        inner = _parse(original, depth + 1)
        if inner.is_bounce or inner.category in (BounceCategory.FEEDBACK, BounceCategory.DELIVERED):
            return inner
    return None


def _feedback(view: MailView, addresses: list[str], family_name: str, message_id: str | None = None) -> BounceReport:
    recipients = [BouncedRecipient(address=a, kind=BounceKind.NOT_BOUNCE, reason="feedback") for a in addresses]
    return BounceReport(
        category=BounceCategory.FEEDBACK,
        reason="feedback",
        recipients=recipients,
        original_message_id=message_id or original_message_id(view),
        family=family_name,
        subject=view.subject or None,
    )


def _autoreply(view: MailView) -> BounceReport:
    address = autoreply_address(view)
    recipients = [BouncedRecipient(address=address, kind=BounceKind.NOT_BOUNCE, reason="vacation")] if address else []
    in_reply_to = _ANGLE_ID.search(view.header("in-reply-to"))
    return BounceReport(
        category=BounceCategory.AUTOREPLY,
        reason="vacation",
        recipients=recipients,
        original_message_id=in_reply_to.group(0) if in_reply_to else original_message_id(view),
        family="rfc3834",
        subject=view.subject or None,
    )


def _delivered(view: MailView, collected: Collected, family: str | None) -> BounceReport:
    recipients = [
        BouncedRecipient(
            address=f.address,
            kind=BounceKind.NOT_BOUNCE,
            reason="delivered",
            status=f.status,
            smtp_reply=f.smtp_reply,
            action=f.action,
        )
        for f in collected.delivered
    ]
    return BounceReport(
        category=BounceCategory.DELIVERED,
        reason="delivered",
        status=recipients[0].status if recipients else None,
        recipients=recipients,
        original_message_id=original_message_id(view),
        family=family,
        subject=view.subject or None,
    )


def original_message_id(view: MailView) -> str | None:
    """Message-ID of the returned original: attached message, headers part, or inline copy."""
    for original in view.originals:
        value = original.get("message-id")
        if value:
            return " ".join(str(value).split())
    for text in view.original_header_texts:
        match = _MESSAGE_ID.search(text)
        if match:
            return match.group(1)
    for text in view.texts:
        region = cut_original(text, None)
        match = _MESSAGE_ID.search(text, len(region)) or _MESSAGE_ID.search(text)
        if match:
            return match.group(1)
    in_reply_to = _ANGLE_ID.search(view.header("in-reply-to"))  # Exchange, Gmail, James answer "in reply to" it
    return in_reply_to.group(0) if in_reply_to else None
