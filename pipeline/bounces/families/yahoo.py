"""Yahoo / AOL (Yahoo Inc.) failure notices."""

from __future__ import annotations

from pipeline.bounces.families.base import Family, Marker

YAHOO = Family(
    name="yahoo",
    markers=(
        Marker("from", r"mailer-daemon@(?:[\w.-]+\.)?(?:yahoo|yahoodns|aol|ymail)\.", 2),
        Marker("body", r"^sorry, we were unable to deliver your message to the following address", 2),
        Marker("body", r"^this message was created automatically by mail delivery software on the yahoo", 2),
        Marker("subject", r"^failure notice$", 1),
    ),
    begin=(r"^sorry, we were unable to deliver your message",),
    cut=(r"^---\s*below this line is a copy of the message",),
    reasons=(
        (r"this user doesn't have a (?:yahoo|ymail|rocketmail|aol)[\w.]* account|dd this user doesn't have", "user_unknown"),
        (r"over quota|mailbox is full", "mailbox_full"),
        (r"user is suspended|account is disabled", "suspend"),
    ),
)
