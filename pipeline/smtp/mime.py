"""Build the bytes on the wire: RFC 5322 headers folded, no CR/LF from lead data, size-capped."""

from __future__ import annotations

import binascii
import email.policy
import hashlib
from dataclasses import dataclass
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, formatdate, localtime

from email_validator import EmailNotValidError, validate_email

from pipeline.errors import HeaderInjection, MailpipeError, MessageTooLarge
from pipeline.models import RoutedMessage, has_line_break

# refold_source="none": an ASCII header set raw (set_raw) goes out as written; refolding would turn a
# long unbroken URL (List-Unsubscribe) into RFC 2047 encoded words that no client can use.
WIRE_POLICY = email.policy.SMTP.clone(max_line_length=78, raise_on_defect=False, refold_source="none")
UTF8_POLICY = email.policy.SMTPUTF8.clone(max_line_length=78, raise_on_defect=False, refold_source="none")
MAX_RAW_HEADER_LINE = 998
_RESERVED = frozenset(
    h.lower()
    for h in (
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "Reply-To",
        "MIME-Version",
        "Content-Type",
        "Content-Transfer-Encoding",
        "Sender",
        "Return-Path",
        "Bcc",
        "Cc",
    )
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
    """The message as bytes; the common all-ASCII-address case skips the slow `email` machinery."""
    if smtputf8 or not _ascii_addresses(routed):
        return _build_with_email_package(routed, max_bytes=max_bytes, smtputf8=smtputf8)
    data = build_fast(routed)
    if len(data) > max_bytes:
        raise MessageTooLarge(f"message is {len(data)} bytes, the cap is {max_bytes}")
    return data


def _ascii_addresses(routed: RoutedMessage) -> bool:
    return all(a.isascii() for a in (routed.event.to, routed.from_addr, routed.envelope_from, routed.reply_to or ""))


def _header(name: str, value: str, *, fold_words: bool = True) -> str:
    """One header line: ASCII written as is (folded at spaces past 78), other text RFC 2047-encoded."""
    _clean(value, name)
    if not value.isascii():
        return f"{name}: {_encoded_words(name, value)}\r\n"
    line = f"{name}: {value}"
    if len(line) <= 78 or not fold_words:
        if len(line) > MAX_RAW_HEADER_LINE:
            return str(WIRE_POLICY.fold(name, value))
        return line + "\r\n"
    lines: list[str] = []
    current = f"{name}:"
    for word in value.split(" "):
        if len(current) + 1 + len(word) > 78 and current.strip() and current != f"{name}:":
            lines.append(current)
            current = ""
        current += " " + word
    lines.append(current)
    if any(len(part) > MAX_RAW_HEADER_LINE for part in lines):
        return str(WIRE_POLICY.fold(name, value))
    return "\r\n".join(lines) + "\r\n"


def _address_header(name: str, display: str | None, addr: str) -> str:
    if not display:
        return _header(name, addr)
    _clean(display, "display name")
    if display.isascii():
        return _header(name, formataddr((display, addr)))
    return f"{name}: {_encoded_words(name, display)} <{addr}>\r\n"


def _encoded_words(name: str, value: str) -> str:
    """RFC 2047 encoded words, folded with CRLF + space: always pure ASCII."""
    return Header(value, "utf-8", header_name=name).encode(linesep="\r\n")


def _qp_part(content_type: str, text: str) -> bytes:
    body = binascii.b2a_qp(text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8"), istext=True)
    return (
        f'Content-Type: {content_type}; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'.encode()
        + body.replace(b"\n", b"\r\n")
    )


def build_fast(routed: RoutedMessage) -> bytes:
    rendered = routed.message
    event = rendered.event
    parts = [
        _address_header("From", routed.from_name, routed.from_addr),
        _address_header("To", event.to_name, event.to),
    ]
    if routed.reply_to:
        parts.append(_header("Reply-To", routed.reply_to))
    parts.append(_header("Subject", rendered.subject))
    parts.append(f"Date: {formatdate(localtime=True)}\r\n")
    parts.append(_header("Message-ID", rendered.message_id, fold_words=False))
    for name, value in rendered.headers.items():
        _clean(name, "name")
        if name.lower() in _RESERVED or not name.replace("-", "").replace("_", "").isalnum():
            raise HeaderInjection(f"header {name!r} may not be set by a template or plugin")
        parts.append(_header(name, value, fold_words=False))
    parts.append("MIME-Version: 1.0\r\n")
    head = "".join(parts).encode("ascii")
    text_part = _qp_part("text/plain", rendered.text)
    if rendered.html is None:
        return head + text_part
    boundary = "=_mp_" + hashlib.sha256(rendered.message_id.encode()).hexdigest()[:24]
    html_part = _qp_part("text/html", rendered.html)
    return b"".join(
        (
            head,
            f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'.encode(),
            f"--{boundary}\r\n".encode(),
            text_part,
            b"\r\n",
            f"--{boundary}\r\n".encode(),
            html_part,
            b"\r\n",
            f"--{boundary}--\r\n".encode(),
        )
    )


def _build_with_email_package(routed: RoutedMessage, *, max_bytes: int, smtputf8: bool) -> bytes:
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
