"""Outlook.com / Hotmail / Windows Live consumer mail NDRs."""

from __future__ import annotations

from pipeline.bounces.families.base import Family, Marker

OUTLOOK = Family(
    name="outlook",
    markers=(
        Marker("from", r"postmaster@(?:hotmail|outlook|live|msn)\.[a-z.]+", 2),
        Marker("body", r"this is an automatically generated delivery status notification", 1),
        Marker("body", r"delivery to the following recipients failed\.?", 1),
        Marker("received", r"(?:hotmail|outlook|protection\.outlook)\.com", 0),
    ),
    begin=(r"delivery to the following recipients failed",),
    reasons=(
        (r"requested action not taken: mailbox unavailable|mailbox unavailable", "user_unknown"),
        (r"mailbox (?:is )?full|exceeded the storage limit", "mailbox_full"),
        (r"5\.7\.(?:708|750|606)\b|traffic not accepted from this ip", "blocked"),
    ),
)
