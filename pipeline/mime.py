"""Build the bytes on the wire: RFC 5322 headers folded, no CR/LF from lead data, size-capped."""

from __future__ import annotations

import email.policy
import hashlib
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, localtime

from .errors import HeaderInjection, MessageTooLarge
from .models import RoutedMessage

WIRE_POLICY = email.policy.SMTP.clone(max_line_length=78, raise_on_defect=False)
UTF8_POLICY = email.policy.SMTPUTF8.clone(max_line_length=78, raise_on_defect=False)
_RESERVED = frozenset(
    h.lower()
    for h in ("From", "To", "Subject", "Date", "Message-ID", "Reply-To", "MIME-Version", "Content-Type",
              "Content-Transfer-Encoding", "Sender", "Return-Path", "Bcc", "Cc")
)


def message_id_for(tenant: str, event_id: str, domain: str) -> str:
    """Stable across retries and re-renders: derived from the idempotency key."""
    digest = hashlib.sha256(f"{tenant}\x00{event_id}".encode()).hexdigest()[:32]
    return f"<{digest}@{domain}>"


def _clean(value: str, name: str) -> str:
    if "\r" in value or "\n" in value or "\x00" in value:
        raise HeaderInjection(f"header {name} contains CR, LF or NUL")
    return value


def _address(name: str | None, addr: str) -> str:
    local, _, domain = addr.rpartition("@")
    return str(Address(display_name=_clean(name or "", "display name"), username=local, domain=domain))


def build_message(routed: RoutedMessage, *, max_bytes: int, smtputf8: bool = False) -> bytes:
    rendered = routed.message
    event = rendered.event
    msg = EmailMessage(policy=UTF8_POLICY if smtputf8 else WIRE_POLICY)
    msg["From"] = _address(routed.from_name, routed.from_addr)
    msg["To"] = _address(event.to_name, event.to)
    if routed.reply_to:
        msg["Reply-To"] = _address(None, routed.reply_to)
    msg["Subject"] = _clean(rendered.subject, "Subject")
    msg["Date"] = format_datetime(localtime())
    msg["Message-ID"] = _clean(rendered.message_id, "Message-ID")
    for name, value in rendered.headers.items():
        _clean(name, "name")
        if name.lower() in _RESERVED or not name.replace("-", "").isalnum():
            raise HeaderInjection(f"header {name!r} may not be set by a template or plugin")
        msg[name] = _clean(value, name)
    msg.set_content(rendered.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    if rendered.html is not None:
        msg.add_alternative(rendered.html, subtype="html", charset="utf-8", cte="quoted-printable")
    data = msg.as_bytes()
    if len(data) > max_bytes:
        raise MessageTooLarge(f"message is {len(data)} bytes, the cap is {max_bytes}")
    return data

