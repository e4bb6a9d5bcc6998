"""Courier mail server and OpenSMTPD, whose reports share the transcript layout."""

from __future__ import annotations

from pipeline.bounces.families.base import Family, Marker

COURIER = Family(
    name="courier",
    markers=(
        Marker("body", r"running the courier mail server", 2),
        Marker("subject", r"^notice: mail delivery status\.?", 1),
        Marker("from", r"courier mail server at", 2),
    ),
    begin=(r"your message to the following recipients cannot be delivered", r"undeliverable mail"),
    reasons=((r"no such (?:user|mailbox)|unknown user", "user_unknown"),),
)

OPENSMTPD = Family(
    name="opensmtpd",
    markers=(
        Marker("body", r"this is the mailer-daemon, please do not reply to this e-?mail", 2),
        Marker("body", r"an error has occurred while attempting to deliver a message for the following", 1),
        Marker("subject", r"^delivery status notification: (?:error|delay)", 1),
    ),
    begin=(r"an error has occurred while attempting to deliver",),
    cut=(r"^\s*below is a copy of the original message",),
)
