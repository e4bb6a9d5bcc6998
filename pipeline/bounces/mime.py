"""Read any mail (bytes, str, Message; CRLF or LF; any charset or transfer encoding) into
a flat view the bounce parser works on. Never raises on malformed input."""

from __future__ import annotations

import base64
import binascii
import codecs
import email
import html
import quopri
import re
from dataclasses import dataclass, field
from email import policy
from email.header import decode_header, make_header
from email.message import Message

MAX_BYTES = 8_000_000
MAX_DEPTH = 12

_DSN_TYPES = ("message/delivery-status", "message/global-delivery-status")
_ORIGINAL_TYPES = ("message/rfc822", "message/global", "message/partial")
_HEADER_TYPES = ("text/rfc822-headers", "message/rfc822-headers", "text/rfc822-header", "message/global-headers")
_FEEDBACK_TYPES = ("message/feedback-report",)


@dataclass
class MailView:
    """The parts of a mail that matter for bounce parsing."""

    message: Message
    headers: dict[str, list[str]] = field(default_factory=dict)
    texts: list[str] = field(default_factory=list)
    dsn_texts: list[str] = field(default_factory=list)
    feedback_texts: list[str] = field(default_factory=list)
    originals: list[Message] = field(default_factory=list)
    original_header_texts: list[str] = field(default_factory=list)

    def header(self, name: str) -> str:
        values = self.headers.get(name.lower())
        return values[0] if values else ""

    def header_all(self, name: str) -> list[str]:
        return self.headers.get(name.lower(), [])

    @property
    def subject(self) -> str:
        return self.header("subject")

    @property
    def sender(self) -> str:
        return self.header("from")

    @property
    def content_type(self) -> str:
        return (self.message.get_content_type() or "").lower()

    @property
    def body_text(self) -> str:
        return "\n".join(self.texts)


def load_message(raw: bytes | str | Message) -> Message:
    """Parse without ever raising; line endings normalised to LF first."""
    if isinstance(raw, Message):
        return raw
    if isinstance(raw, str):
        try:
            data = raw.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # a lone surrogate that is no escaped byte (e.g. U+D800)
            data = raw.encode("utf-8", "replace")
    elif isinstance(raw, (bytes, bytearray, memoryview)):
        data = bytes(raw)
    else:
        data = b""
    data = data[:MAX_BYTES].replace(b"\r\n", b"\n").replace(b"\r", b"\n").lstrip(b"\n")
    try:
        return email.message_from_bytes(data, policy=policy.compat32)
    except Exception:
        return email.message_from_string("", policy=policy.compat32)


def decode_header_value(value: object) -> str:
    text = _undo_surrogates(value if isinstance(value, str) else str(value or ""))
    try:
        decoded = str(make_header(decode_header(text)))
    except Exception:
        decoded = text
    return " ".join(decoded.split())


def _undo_surrogates(text: str) -> str:
    """Raw 8-bit header bytes arrive as surrogate escapes; read them as UTF-8 (else Latin-1)."""
    if not any("\udc80" <= ch <= "\udcff" for ch in text):
        return text
    return decode_bytes(text.encode("utf-8", "surrogateescape"), None)


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Bytes to text: declared charset, then UTF-8, then Latin-1 (never fails)."""
    for candidate in (charset, "utf-8"):
        if not candidate:
            continue
        try:
            codecs.lookup(candidate)
            return data.decode(candidate)
        except (LookupError, UnicodeDecodeError, ValueError):
            continue
    return data.decode("latin-1", "replace")


def part_text(part: Message) -> str:
    """The decoded text of a leaf part."""
    try:
        payload = part.get_payload()
        if isinstance(payload, list):
            return "\n".join(_message_text(p) for p in payload if isinstance(p, Message))
        cte = str(part.get("content-transfer-encoding", "")).strip().lower()
        raw = payload.encode("latin-1", "replace") if isinstance(payload, str) else bytes(payload or b"")
        if isinstance(payload, str) and any(ord(ch) > 255 for ch in payload):
            raw = payload.encode("utf-8", "surrogateescape")
        data = _transfer_decode(raw, cte)
        return decode_bytes(data, _charset(part))
    except Exception:
        return ""


def _charset(part: Message) -> str | None:
    try:
        return part.get_content_charset()
    except Exception:
        return None


def _transfer_decode(raw: bytes, cte: str) -> bytes:
    if cte == "base64":
        cleaned = re.sub(rb"[^A-Za-z0-9+/=]", b"", raw)
        cleaned = cleaned[: len(cleaned) - len(cleaned) % 4] if b"=" not in cleaned else cleaned
        try:
            return base64.b64decode(cleaned + b"=" * (-len(cleaned) % 4))
        except (binascii.Error, ValueError):
            return raw
    if cte == "quoted-printable":
        try:
            return quopri.decodestring(raw)
        except (binascii.Error, ValueError):
            return raw
    return raw


def _message_text(message: Message) -> str:
    """A sub-message (e.g. one block of a delivery-status part) back as header text."""
    try:
        lines = [f"{k}: {v}" for k, v in message.items()]
        body = message.get_payload()
        if isinstance(body, str) and body.strip():
            lines.append(body)
        return "\n".join(lines) + "\n"
    except Exception:
        return ""


_TAG_BREAKS = re.compile(r"<\s*(?:br|/p|/div|/tr|/li|/h\d|/table|p|div|tr)\b[^>]*>", re.I)
_TAGS = re.compile(r"<[^>]+>")
_SCRIPTS = re.compile(r"<(script|style|head)\b.*?</\1\s*>", re.I | re.S)


def html_to_text(markup: str) -> str:
    text = _SCRIPTS.sub(" ", markup)
    text = _TAG_BREAKS.sub("\n", text)
    text = _TAGS.sub(" ", text)
    text = html.unescape(text)
    return "\n".join(" ".join(line.split()) for line in text.splitlines())


def build_view(message: Message) -> MailView:
    view = MailView(message=message)
    try:
        for key, value in message.raw_items():  # raw: 8-bit bytes kept as surrogates, not U+FFFD
            view.headers.setdefault(key.lower(), []).append(decode_header_value(value))
    except Exception:
        pass
    html_parts: list[str] = []
    _walk(message, view, html_parts, depth=0)
    if not view.texts and html_parts:
        view.texts.extend(html_to_text(h) for h in html_parts)
    return view


def _walk(part: Message, view: MailView, html_parts: list[str], depth: int) -> None:
    if depth > MAX_DEPTH:
        return
    try:
        ctype = (part.get_content_type() or "text/plain").lower()
    except Exception:
        ctype = "text/plain"
    if ctype in _ORIGINAL_TYPES:
        _keep_original(part, view)
        return
    if part.is_multipart() and ctype not in _DSN_TYPES:
        payload = part.get_payload()
        for sub in payload if isinstance(payload, list) else []:
            if isinstance(sub, Message):
                _walk(sub, view, html_parts, depth + 1)
        return
    if ctype in _DSN_TYPES:
        view.dsn_texts.append(part_text(part))
    elif ctype in _FEEDBACK_TYPES:
        view.feedback_texts.append(part_text(part))
    elif ctype in _HEADER_TYPES:
        view.original_header_texts.append(part_text(part))
    elif ctype == "text/html":
        html_parts.append(part_text(part))
    elif ctype.startswith("text/") or ctype == "application/json" or _is_text_attachment(part):
        _keep_text(part, view)


def _keep_text(part: Message, view: MailView) -> None:
    text = part_text(part)
    disposition = str(part.get("content-disposition", "")).lower()
    filename = (part.get_filename() or "").lower() if not disposition.startswith("inline") else ""
    if filename.endswith((".eml", ".msg")) or (filename and _looks_like_headers(text)):
        view.original_header_texts.append(text)
        return
    view.texts.append(text)


def _is_text_attachment(part: Message) -> bool:
    filename = (part.get_filename() or "").lower()
    return filename.endswith((".txt", ".eml"))


def _looks_like_headers(text: str) -> bool:
    head = text[:2000]
    return bool(re.search(r"^(?:Received|Message-ID|Return-Path):", head, re.I | re.M))


def _keep_original(part: Message, view: MailView) -> None:
    payload = part.get_payload()
    if isinstance(payload, list):
        view.originals.extend(p for p in payload if isinstance(p, Message))
    elif isinstance(payload, str):
        text = part_text(part)
        view.originals.append(load_message(text))
