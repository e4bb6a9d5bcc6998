"""What one mailbox message means for the mail we sent: reply, auto-reply, bounce, complaint, or nothing.

Order matters: the bounce parser first (DSNs carry `Auto-Submitted` and quote our Message-ID, so
they must not pass as auto-replies or replies), then RFC 3834 auto-replies, then human replies
matched by In-Reply-To/References. A message we sent ourselves (its own Message-ID is ours) is
ignored. Untrusted input: any failure makes the message `error`, never an exception.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field
from typing import Any

from pipeline.inbox.autoreply import is_auto_reply
from pipeline.inbox.index import EventRef, MessageIndex, normalise_message_id, verp_message_ids
from pipeline.inbox.message import InboxMessage, read_message
from pipeline.inbox.snippet import reply_snippet
from pipeline.models import RecipientEvent

log = logging.getLogger(__name__)


class Kind(enum.StrEnum):
    REPLY = "reply"
    AUTOREPLY = "autoreply"
    BOUNCE = "bounce"
    COMPLAINT = "complaint"
    DELIVERED = "delivered"
    IGNORED = "ignored"
    ERROR = "error"


STATE_FOR_KIND = {
    Kind.REPLY: RecipientEvent.REPLIED,
    Kind.AUTOREPLY: RecipientEvent.AUTORESPONDED,
    Kind.BOUNCE: RecipientEvent.BOUNCED,
    Kind.COMPLAINT: RecipientEvent.COMPLAINED,
    Kind.DELIVERED: RecipientEvent.DELIVERED,
}


@dataclass
class Finding:
    kind: Kind
    ref: EventRef | None = None
    entry: dict[str, Any] = field(default_factory=dict)
    hard: bool = False
    reason: str | None = None
    status: str | None = None

    @property
    def counter(self) -> str:
        """The count this message adds to: `reply`, `bounce_unmatched`, `ignored`, …"""
        if self.kind in (Kind.IGNORED, Kind.ERROR) or self.ref is not None:
            return str(self.kind)
        return f"{self.kind}_unmatched"


def classify_message(
    raw: bytes, index: MessageIndex, message_id_domain: str, *, truncated: bool = False, tenants: list[str] | None = None
) -> Finding:
    """`tenants` limits the mail this message may answer to theirs (a tenant's own mailbox); None: any tenant's."""
    try:
        return _classify(read_message(raw, truncated=truncated), _Lookup(index, tenants), message_id_domain)
    except Exception:  # a hostile or broken mail must never stop the poller
        log.warning("inbox_classify_failed", exc_info=True)
        return Finding(Kind.ERROR)


@dataclass(frozen=True)
class _Lookup:
    index: MessageIndex
    tenants: list[str] | None

    def find(self, message_ids: list[str]) -> EventRef | None:
        return self.index.find(message_ids, self.tenants)


def _classify(message: InboxMessage, index: _Lookup, message_id_domain: str) -> Finding:
    own = message.message_id
    if own and index.find([own]):
        return Finding(Kind.IGNORED, entry={"why": "our own message"})
    from pipeline.bounces import BounceCategory, parse_bounce

    report = parse_bounce(message.raw)
    base = _base_entry(message)
    if report.category == BounceCategory.FEEDBACK:
        ids = _ids(report.original_message_id) + message.answered_ids
        return Finding(Kind.COMPLAINT, index.find(ids), {**base, "reason": "feedback"}, reason="feedback")
    if report.is_bounce:
        ids = _ids(report.original_message_id) + verp_message_ids(message.recipients, message_id_domain)
        first = report.recipients[0] if report.recipients else None
        entry = {
            **base,
            "reason": report.reason,
            "kind": str(report.kind),
            "status": report.status,
            "recipient": first.address[:320] if first else None,
            "reply": (first.smtp_reply or "")[:500] if first else "",
            "family": report.family,
        }
        hard = str(report.kind) == "hard"
        return Finding(Kind.BOUNCE, index.find(ids), entry, hard=hard, reason=report.reason, status=report.status)
    if report.category == BounceCategory.DELIVERED:
        ids = _ids(report.original_message_id)
        entry = {**base, "status": report.status}
        return Finding(Kind.DELIVERED, index.find(ids), entry, reason="delivered", status=report.status)
    if report.category == BounceCategory.AUTOREPLY or is_auto_reply(message):
        ids = message.answered_ids + _ids(report.original_message_id)
        return Finding(Kind.AUTOREPLY, index.find(ids), base, reason="vacation")
    answered = message.answered_ids
    if not answered:
        return Finding(Kind.IGNORED, entry={"why": "answers nothing"})
    ref = index.find(answered)
    if ref is None:
        return Finding(Kind.IGNORED, entry={"why": "answers mail we did not send"})
    return Finding(Kind.REPLY, ref, {**base, "snippet": reply_snippet(message.text)})


def _ids(value: str | None) -> list[str]:
    normal = normalise_message_id(value) if value else None
    return [normal] if normal else []


def _base_entry(message: InboxMessage) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "stage": "inbox",
        "from": message.sender,
        "subject": message.subject[:200],
        "sent_at": message.sent_at,
        "inbox_message_id": message.message_id,
    }
    if message.truncated:
        entry["truncated"] = True
    return entry
