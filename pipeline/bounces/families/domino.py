"""IBM/HCL Domino and Lotus Notes delivery failure reports."""

from __future__ import annotations

from pipeline.bounces.families.base import Family, Marker

_REASONS: tuple[tuple[str, str], ...] = (
    (
        r"not listed in (?:domino directory|public name & address book)|domino ディレクトリには見つかりません|"
        r"no such user|user .{0,80} not listed",
        "user_unknown",
    ),
    (r"cannot route mail to user", "filtered"),
    (r"several matches found in domino directory|ambiguous", "system_error"),
    (r"mail file is full|exceed(?:s|ed)? .{0,20}quota", "mailbox_full"),
)

DOMINO = Family(
    name="domino",
    markers=(
        Marker("subject", r"^delivery[ _]failure\s*:", 2),
        Marker("body", r"^\s*was not delivered to\s*:", 1),
        Marker("body", r"^\s*because\s*:", 1),
        Marker("x-mailer", r"lotus domino|ibm domino|hcl domino", 1),
    ),
    begin=(r"^\s*your message\s*$", r"was not delivered to\s*:"),
    reasons=_REASONS,
)

NOTES = Family(
    name="notes",
    markers=(
        Marker("subject", r"^undeliverable message", 1),
        Marker("body", r"^-{3,}\s*failure reasons\s*-{3,}", 2),
        Marker("x-mailer", r"lotus notes", 1),
    ),
    begin=(r"^-{3,}\s*failure reasons\s*-{3,}",),
    cut=(r"^-{3,}\s*returned message\s*-{3,}",),
    diag_before=True,
    reasons=_REASONS,
)
