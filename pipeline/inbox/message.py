"""One mail from the mailbox, read defensively: decoded headers, the reply text, bounded sizes."""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime

from pipeline.inbox.index import message_ids_in, normalise_message_id
from pipeline.smtp.htmltext import html_to_text

MAX_HEADER_CHARS = 4_000
MAX_TEXT_CHARS = 200_000
MAX_PARTS = 50


@dataclass
class InboxMessage:
    raw: bytes
    headers: dict[str, list[str]] = field(default_factory=dict)
    text: str = ""
    truncated: bool = False

    def header(self, name: str) -> str:
        values = self.headers.get(name.lower())
        return values[0] if values else ""

    @property
    def subject(self) -> str:
        return " ".join(self.header("subject").split())[:300]

    @property
    def sender(self) -> str:
        """The From address (not the display name), lower case, or ''."""
        addresses = getaddresses([self.header("from")])
        return addresses[0][1].strip().lower()[:320] if addresses else ""

    @property
    def message_id(self) -> str | None:
        return normalise_message_id(self.header("message-id"))

    @property
    def answered_ids(self) -> list[str]:
        """Message-IDs this mail answers: In-Reply-To first, then References (newest first)."""
        in_reply_to = message_ids_in(self.header("in-reply-to"))
        references = list(reversed(message_ids_in(" ".join(self.headers.get("references", [])))))
        return list(dict.fromkeys(in_reply_to + references))

    @property
    def recipients(self) -> list[str]:
        """Addresses the mail was delivered to (To, Delivered-To, X-Original-To): where VERP tokens live."""
        values = [v for name in ("delivered-to", "x-original-to", "to", "envelope-to") for v in self.headers.get(name, [])]
        return [address for _, address in getaddresses(values[:20]) if address][:20]

    @property
    def sent_at(self) -> float | None:
        value = self.header("date")
        if not value:
            return None
        try:
            return parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None


def _decode_header(value: object) -> str:
    text = str(value)[:MAX_HEADER_CHARS]
    try:
        return str(make_header(decode_header(text)))[:MAX_HEADER_CHARS]
    except (ValueError, LookupError, UnicodeError, AssertionError):
        return text


def _part_text(part: Message) -> str:
    try:
        payload = part.get_payload(decode=True)
    except (ValueError, LookupError, AssertionError):
        return ""
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload[: MAX_TEXT_CHARS * 4].decode(charset, errors="replace")[:MAX_TEXT_CHARS]
    except LookupError:
        return payload[: MAX_TEXT_CHARS * 4].decode("utf-8", errors="replace")[:MAX_TEXT_CHARS]


def _body_text(message: Message) -> str:
    plain: str | None = None
    html: str | None = None
    for index, part in enumerate(message.walk()):
        if index >= MAX_PARTS:
            break
        if part.is_multipart() or part.get_content_disposition() == "attachment":
            continue
        ctype = part.get_content_type()
        if ctype == "text/plain" and plain is None:
            plain = _part_text(part)
        elif ctype == "text/html" and html is None:
            html = _part_text(part)
    if plain is not None:
        return plain
    return html_to_text(html)[:MAX_TEXT_CHARS] if html else ""


def read_message(raw: bytes, *, truncated: bool = False) -> InboxMessage:
    """Never raises: a mail the parser cannot make sense of comes back with what could be read."""
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    headers: dict[str, list[str]] = {}
    for count, (name, value) in enumerate(message.items()):
        if count >= 500:
            break
        headers.setdefault(str(name).strip().lower()[:100], []).append(_decode_header(value))
    try:
        text = _body_text(message)
    except Exception:  # hostile MIME must not stop the poller; the headers still count
        text = ""
    return InboxMessage(raw=raw, headers=headers, text=text, truncated=truncated)
