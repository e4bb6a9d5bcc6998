"""Per-recipient facts gathered from a bounce before the reason is decided."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Finding:
    """One failed (or delivered) recipient as read from the mail."""

    address: str
    diagnostic: str = ""  # the recipient's own error text
    context: str = ""  # surrounding text, used when the own text says too little
    status: str | None = None
    reply: int | None = None
    action: str | None = None
    command: str | None = None
    remote_mta: str | None = None
    hint: str | None = None  # a reason the MTA family already knows
    smtp_reply: str | None = None
    source: str = "text"  # dsn | text | header | json | original

    def merge_text(self, text: str) -> None:
        text = text.strip()
        if text and text not in self.diagnostic:
            self.diagnostic = f"{self.diagnostic} {text}".strip()
