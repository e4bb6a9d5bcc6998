"""The new words of a reply: quoted text, attribution lines and signatures cut off, bounded."""

from __future__ import annotations

import re

SNIPPET_CHARS = 280
_SCAN_LINES = 400

# Where the quoted original starts, in the forms mail clients write it.
_QUOTE_HEADERS = (
    re.compile(r"^\s*On\b.{0,300}\bwrote:\s*$", re.I),  # Gmail, Apple Mail, Thunderbird
    re.compile(r"^\s*Am\b.{0,300}\bschrieb.{0,100}:\s*$", re.I),
    re.compile(r"^\s*Le\b.{0,300}\ba écrit\s*:\s*$", re.I),
    re.compile(r"^\s*El\b.{0,300}\bescribió:\s*$", re.I),
    re.compile(r"^\s*-{2,}\s*(?:Original Message|Ursprüngliche Nachricht|Message d'origine|Mensaje original)\s*-{2,}", re.I),
    re.compile(r"^\s*_{10,}\s*$"),  # Outlook's rule before the quoted header block
    re.compile(r"^\s*(?:From|Von|De)\s*:\s.{0,300}$", re.I),  # a quoted header block without a rule
    re.compile(r"^\s*Sent from my \w+", re.I),
)
_SIGNATURE = re.compile(r"^-- ?$")


def reply_snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    """The reply's own text, whitespace collapsed, at most `limit` characters."""
    kept: list[str] = []
    for index, line in enumerate(text.replace("\r\n", "\n").split("\n")):
        if index >= _SCAN_LINES:
            break
        if line.lstrip().startswith(">"):
            continue
        if _SIGNATURE.match(line) or any(pattern.match(line[:500]) for pattern in _QUOTE_HEADERS):
            break
        kept.append(line)
    snippet = " ".join(" ".join(kept).split())
    return snippet if len(snippet) <= limit else snippet[: limit - 1].rstrip() + "…"
