"""Build the bytes on the wire: RFC 5322 headers folded, no CR/LF from lead data, size-capped."""

from __future__ import annotations

import email.policy
import hashlib
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, localtime

from email_validator import EmailNotValidError, validate_email

from .errors import HeaderInjection, MailpipeError, MessageTooLarge
from .models import RoutedMessage, has_line_break

# refold_source="none": an ASCII header set raw (set_raw) goes out as written; refolding would turn a
# long unbroken URL (List-Unsubscribe) into RFC 2047 encoded words that no client can use.
WIRE_POLICY = email.policy.SMTP.clone(max_line_length=78, raise_on_defect=False, refold_source="none")
UTF8_POLICY = email.policy.SMTPUTF8.clone(max_line_length=78, raise_on_defect=False, refold_source="none")
MAX_RAW_HEADER_LINE = 998
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
    if has_line_break(value):
        raise HeaderInjection(f"header {name} contains CR, LF, NUL or another line-break character")
    return value


class UnsendableAddress(MailpipeError):
    """An address that cannot be put on the wire (bad IDNA domain, non-ASCII without SMTPUTF8)."""


@dataclass(frozen=True)
class Envelope:
    sender: str
    recipient: str
    smtputf8: bool  # some address has a non-ASCII local part: only a server offering SMTPUTF8 can take it


def wire_address(addr: str, *, smtputf8: bool) -> str:
    """The address as sent: an internationalised domain in its ASCII (IDNA, xn--) form."""
    _clean(addr, "address")
    if addr.isascii():
        return addr
    local = addr.rpartition("@")[0]
    try:
        ascii_domain = validate_email(addr, check_deliverability=False, allow_smtputf8=True).ascii_domain
    except EmailNotValidError as exc:
        raise UnsendableAddress(f"address cannot be sent: {exc}") from None
    if not local.isascii() and not smtputf8:
        raise UnsendableAddress("address has a non-ASCII local part and SMTPUTF8 is not in use")
    return f"{local}@{ascii_domain}"


def envelope_for(routed: RoutedMessage) -> Envelope:
    """MAIL FROM / RCPT TO addresses, and whether SMTPUTF8 is needed (RFC 6531)."""
    addresses = (routed.event.to, routed.envelope_from, routed.from_addr, routed.reply_to or "")
    utf8 = any(not a.rpartition("@")[0].isascii() for a in addresses)
    return Envelope(
        sender=wire_address(routed.envelope_from, smtputf8=utf8),
        recipient=wire_address(routed.event.to, smtputf8=utf8),
        smtputf8=utf8,
    )


def _address(name: str | None, addr: str, smtputf8: bool) -> str:
    local, _, domain = wire_address(addr, smtputf8=smtputf8).rpartition("@")
    return str(Address(display_name=_clean(name or "", "display name"), username=local, domain=domain))


def build_message(routed: RoutedMessage, *, max_bytes: int, smtputf8: bool = False) -> bytes:
    rendered = routed.message
    event = rendered.event
    msg = EmailMessage(policy=UTF8_POLICY if smtputf8 else WIRE_POLICY)
    msg["From"] = _address(routed.from_name, routed.from_addr, smtputf8)
    msg["To"] = _address(event.to_name, event.to, smtputf8)
    if routed.reply_to:
        msg["Reply-To"] = _address(None, routed.reply_to, smtputf8)
    msg["Subject"] = _clean(rendered.subject, "Subject")
    msg["Date"] = format_datetime(localtime())
    msg["Message-ID"] = _clean(rendered.message_id, "Message-ID")
    for name, value in rendered.headers.items():
        _clean(name, "name")
        if name.lower() in _RESERVED or not name.replace("-", "").replace("_", "").isalnum():
            raise HeaderInjection(f"header {name!r} may not be set by a template or plugin")
        if value.isascii() and len(name) + 2 + len(value) <= MAX_RAW_HEADER_LINE:
            msg.set_raw(name, _clean(value, name))
        else:
            msg[name] = _clean(value, name)
    msg.set_content(rendered.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    if rendered.html is not None:
        msg.add_alternative(rendered.html, subtype="html", charset="utf-8", cte="quoted-printable")
    data = msg.as_bytes()
    if len(data) > max_bytes:
        raise MessageTooLarge(f"message is {len(data)} bytes, the cap is {max_bytes}")
    return data

