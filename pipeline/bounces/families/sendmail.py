"""Sendmail (8.x, V5, and the many MTAs that copy its "following addresses" layout)."""

from __future__ import annotations

from pipeline.bounces.families.base import Family, Marker

SENDMAIL = Family(
    name="sendmail",
    markers=(
        Marker("body", r"^\s*-{3,}\s*the following addresses had (?:permanent fatal|transient non-fatal) errors", 2),
        Marker("body", r"^\s*-{3,}\s*transcript of session follows", 2),
        Marker("subject", r"^(?:returned mail|warning: could not send message|postmaster notify)", 1),
        Marker("from", r"mail delivery subsystem", 1),
    ),
    begin=(r"^\s*-{3,}\s*the following addresses had",),
    cut=(r"^\s*-{3,}\s*(?:original message follows|unsent message follows|message header follows)",),
    reasons=((r"host unknown \(name server:", "host_unknown"),),
)
