"""RFC 3464 delivery-status fields: per-message and per-recipient blocks, leniently read."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .addresses import first_address

_FIELD_RE = re.compile(r"^([A-Za-z][A-Za-z0-9\-]{1,60})\s*:\s?(.*)$")
_RECIPIENT_FIELDS = ("final-recipient", "original-recipient", "x-actual-recipient")
_STATUS_FIELD_RE = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})")
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
    """Read blocks; a new recipient starts at each Final-Recipient (blank lines optional)."""
    result = DeliveryStatus()
    current: dict[str, str] | None = None
    blocks: list[dict[str, str]] = []
    for name, value in _fields((text or "").splitlines()):
        starts_recipient = name == "final-recipient" or (
            name == "original-recipient" and (current is None or "original-recipient" in current)
        )
        if starts_recipient and (current is None or name in current or "final-recipient" in current):
            current = {}
            blocks.append(current)
        if current is None:
            result.per_message.setdefault(name, value)
            continue
        current.setdefault(name, value)
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


def action_of(value: str | None) -> str | None:
    return value.lower().strip() if value else None
