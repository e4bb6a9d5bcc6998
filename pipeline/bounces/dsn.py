"""RFC 3464 delivery-status fields: per-message and per-recipient blocks, leniently read."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pipeline.bounces.addresses import first_address

_FIELD_RE = re.compile(r"^([A-Za-z][A-Za-z0-9\-]{1,60})\s*:\s?(.*)$")
_RECIPIENT_FIELDS = ("final-recipient", "original-recipient", "x-actual-recipient")
_STATUS_FIELD_RE = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})")
_BLANK_LINES = re.compile(r"\n[ \t]*\n")
# Fields that describe one recipient (RFC 3464 §2.3) even when written before its address.
PER_RECIPIENT_FIELDS = frozenset(
    {
        "action",
        "status",
        "diagnostic-code",
        "remote-mta",
        "last-attempt-date",
        "will-retry-until",
        "final-log-id",
        "x-display-name",
        "x-supplementary-info",
    }
)
DSN_HINT_RE = re.compile(r"^(?:Final-Recipient|Original-Recipient|Reporting-MTA)\s*:", re.I | re.M)


@dataclass
class DsnRecipient:
    """One per-recipient block of a delivery-status report."""

    address: str
    original: str | None = None
    action: str | None = None
    status: str | None = None
    diagnostic: str = ""
    diagnostic_type: str | None = None
    remote_mta: str | None = None
    fields: dict[str, str] = field(default_factory=dict)


@dataclass
class DeliveryStatus:
    per_message: dict[str, str] = field(default_factory=dict)
    recipients: list[DsnRecipient] = field(default_factory=list)


def _paragraphs(text: str) -> list[list[tuple[str, str]]]:
    """Field lists of the blank-line separated paragraphs."""
    return [pairs for chunk in _BLANK_LINES.split(text) if (pairs := _fields(chunk.splitlines()))]


def _fields(lines: list[str]) -> list[tuple[str, str]]:
    """Field lines with folded continuations joined."""
    pairs: list[tuple[str, str]] = []
    for line in lines:
        if line[:1] in (" ", "\t") and pairs:
            name, value = pairs[-1]
            pairs[-1] = (name, f"{value} {line.strip()}")
            continue
        match = _FIELD_RE.match(line.strip())
        if match:
            pairs.append((match.group(1).lower(), match.group(2).strip()))
    return pairs


def parse_delivery_status(text: str) -> DeliveryStatus:
    """Read blocks; a new recipient starts at each Final-Recipient (blank lines optional).

    Per-recipient fields written before the recipient's address in the same paragraph
    (Facebook, MessageLabs, Oracle put Action/Status/Diagnostic-Code first) belong to it.
    """
    result = DeliveryStatus()
    blocks: list[dict[str, str]] = []
    for paragraph in _paragraphs(text or ""):
        current: dict[str, str] | None = None
        leading: dict[str, str] = {}
        for name, value in paragraph:
            starts_recipient = name == "final-recipient" or (
                name == "original-recipient" and (current is None or "original-recipient" in current)
            )
            if starts_recipient and (current is None or name in current or "final-recipient" in current):
                current = {} if current is not None else leading
                leading = {}
                blocks.append(current)
            if current is None:
                if name in PER_RECIPIENT_FIELDS:
                    leading.setdefault(name, value)
                else:
                    result.per_message.setdefault(name, value)
                continue
            current.setdefault(name, value)
        # a recipient's fields cut off from its address by a stray blank line
        spill = blocks[-1] if blocks else result.per_message
        for name, value in leading.items():
            spill.setdefault(name, value)
    for block in blocks:
        recipient = _recipient(block, result.per_message)
        if recipient:
            result.recipients.append(recipient)
    return result


def _recipient(block: dict[str, str], per_message: dict[str, str]) -> DsnRecipient | None:
    final = first_address(block.get("final-recipient", ""))
    original = first_address(block.get("original-recipient", ""))
    actual = first_address(block.get("x-actual-recipient", ""))
    address = final or original or actual
    if not address:
        return None
    diagnostic = block.get("diagnostic-code", "")
    diag_type = None
    if ";" in diagnostic[:20]:
        diag_type, _, diagnostic = diagnostic.partition(";")
        diag_type = diag_type.strip().upper()
    status_match = _STATUS_FIELD_RE.search(block.get("status", ""))
    remote = block.get("remote-mta", "")
    return DsnRecipient(
        address=address,
        original=original,
        action=next(iter(block.get("action", "").split()), None),
        status=".".join(status_match.groups()) if status_match else None,
        diagnostic=diagnostic.strip(),
        diagnostic_type=diag_type,
        remote_mta=remote.partition(";")[2].strip() or remote or None,
        fields={**per_message, **block},
    )
