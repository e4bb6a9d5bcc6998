"""Postfix (and Zimbra, which relays through Postfix): bounce(8) templates."""

from __future__ import annotations

from pipeline.bounces.families.base import Family, Marker

POSTFIX = Family(
    name="postfix",
    markers=(
        Marker(
            "subject",
            r"^(?:undelivered mail returned to sender|delayed mail \(still being retried\)|"
            r"successful mail delivery report|mail delivery status report)",
            2,
        ),
        Marker("body", r"^this is the (?:mail system|postfix program) at host", 2),
        Marker("body", r"^X-Postfix-(?:Queue-ID|Sender):", 1),
        Marker("from", r"mail delivery system", 1),
    ),
    begin=(r"^this is the (?:mail system|postfix program) at host",),
    cut=(r"^[ \t]*-{3,}[ \t]*(?:undelivered|delayed) message[ \t]*-*",),
)

ZIMBRA = Family(
    name="zimbra",
    markers=(
        Marker("x-mailer", r"zimbra", 1),
        Marker("body", r"zimbra", 1),
        Marker("subject", r"^undelivered mail returned to sender", 1),
    ),
    begin=(r"^this is the mail system at host",),
)
