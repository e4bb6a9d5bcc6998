"""Find RFC 3463 status codes, RFC 5321 reply codes and the failing SMTP command in text."""

from __future__ import annotations

import re

# 5.1.1, 4.7.26, 5.7.708 — not part of an IP address or a version number.
_STATUS_RE = re.compile(r"(?<![\w.])([245])\.([0-7])\.(\d{1,3})(?![\d]|\.\d)")
_REPLY_WITH_STATUS_RE = re.compile(r"(?<![\w.])([245][0-5]\d)[ -]+#?([245]\.[0-7]\.\d{1,3})(?![\d]|\.\d)")
_REPLY_RE = re.compile(
    r"(?:^|[\s;:'\"(#<\[=]|said:)\s*([245][0-5]\d)(?=[\s\-,;:)'\"]|\.(?!\d)|$)",
)
_COMMAND_TABLE: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b(?:in reply to|after|error after|failed on|at|during) (?:the )?end of data\b", re.I), "DATA"),
    (re.compile(r"\b(?:in reply to|after|error after|failed on|at|during) (?:the )?(rcpt to|rcpt)\b", re.I), "RCPT"),
    (re.compile(r"\b(?:in reply to|after|error after|failed on|at|during) (?:the )?(mail from|mail)\b", re.I), "MAIL"),
    (re.compile(r"\b(?:in reply to|after|error after|failed on|at|during) (?:the )?data\b", re.I), "DATA"),
    (re.compile(r"\b(?:in reply to|after|error after|failed on|at) (?:the )?(ehlo|helo|lhlo)\b", re.I), "HELO"),
    (re.compile(r"\b(?:in reply to|after|at) (?:the )?starttls\b", re.I), "STARTTLS"),
    (re.compile(r"\b(?:after|in reply to) (?:the )?initial connection\b|greeting failed", re.I), "CONN"),
    (re.compile(r"did not like our (?:final data|data)\b", re.I), "DATA"),
    (re.compile(r"did not like our rcpt to\b", re.I), "RCPT"),
    (re.compile(r"did not like our mail from\b", re.I), "MAIL"),
    (re.compile(r">>> ?rcpt to:", re.I), "RCPT"),
    (re.compile(r">>> ?mail from:", re.I), "MAIL"),
    (re.compile(r">>> ?data\b", re.I), "DATA"),
    (re.compile(r">>> ?(?:ehlo|helo)\b", re.I), "HELO"),
    (re.compile(r"\[rcpt_to\]|does not like recipient|rcpt to:<", re.I), "RCPT"),
    (re.compile(r"\[mail_from\]|but sender was rejected|mail from:<", re.I), "MAIL"),
    (re.compile(r"\[end_of_data\]|\[data\]|failed on data command|failed after i sent the message", re.I), "DATA"),
    (re.compile(r"but my name was rejected", re.I), "HELO"),
)


def find_statuses(text: str) -> list[str]:
    """Every enhanced status code in order of appearance."""
    return [".".join(m.groups()) for m in _STATUS_RE.finditer(text or "")]


def is_vague(status: str) -> bool:
    """X.0.0 and 4.4.7 say little; a more specific code elsewhere wins."""
    return status.endswith(".0.0") or status == "4.4.7"


def find_status(text: str, klass: str | None = None) -> str | None:
    """The most telling status code in `text`, of class `klass` ("4"/"5") when given."""
    found = find_statuses(text)
    if klass:
        same = [s for s in found if s[0] == klass]
        found = same or found
    specific = [s for s in found if not is_vague(s)]
    if specific:
        return specific[0]
    return found[0] if found else None


def find_reply_code(text: str) -> int | None:
    """The SMTP reply code in a diagnostic text, preferring one followed by a status code."""
    if not text:
        return None
    paired = _REPLY_WITH_STATUS_RE.search(text)
    if paired:
        return int(paired.group(1))
    match = _REPLY_RE.search(text)
    return int(match.group(1)) if match else None


def find_command(text: str) -> str | None:
    for pattern, command in _COMMAND_TABLE:
        if pattern.search(text or ""):
            return command
    return None


def prefer_status(field: str | None, in_text: str | None, reply: int | None = None) -> str | None:
    """Choose between a DSN `Status:` field and a code found in the diagnostic text."""
    if not field:
        return in_text
    if not in_text or field == in_text:
        return field
    klass = str(reply)[0] if reply else None
    if klass and field[0] != in_text[0]:
        if field[0] == klass:
            return field
        if in_text[0] == klass:
            return in_text
    if field[0] != in_text[0]:
        return field
    if is_vague(field) and not is_vague(in_text):
        return in_text
    if field.endswith(".0") and not in_text.endswith(".0") and not is_vague(in_text):
        return in_text
    if field in {"4.7.0", "5.7.0"} or field.startswith("5.3.") or field[1:4] in {".5.1", ".5.2", ".5.4", ".5.5"}:
        return in_text
    return field


def status_class(status: str | None, reply: int | None) -> int | None:
    """A reply-code-like number for hard/soft decisions: 550 style, or 500/400 from a status."""
    if reply is not None:
        return reply
    if status and status[0] in "245":
        return int(status[0]) * 100
    return None
