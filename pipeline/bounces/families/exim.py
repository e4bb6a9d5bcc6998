"""Exim: deliver.c bounce and delay warnings."""

from __future__ import annotations

from pipeline.bounces.families.base import Family, Marker

EXIM = Family(
    name="exim",
    markers=(
        Marker("body", r"^this message was created automatically by mail delivery software", 2),
        Marker(
            "body",
            r"^a message that you sent (?:could not be delivered|has not yet been delivered|"
            r"was rejected by|contained)",
            1,
        ),
        Marker(
            "subject",
            r"^(?:mail delivery failed|warning: message .+ delayed|mail failure|message frozen|"
            r"error\(s\) in forwarding or filtering)",
            1,
        ),
        Marker("message-id", r"^<\w{6}-\w{6}-\w{2,4}@", 1),
        Marker("x-failed-recipients", r"@", 1),
    ),
    begin=(
        r"^a message (?:that you sent|sent by)",
        r"^this message was created automatically by mail delivery software",
    ),
    cut=(r"^[ \t]*-{3,}[ \t]*this is a copy of (?:the|your) message",),
    reasons=(
        (
            r"all host address lookups failed permanently|all relevant mx records point to non-existent hosts|"
            r"unrouteable (?:mail )?domain|unrouteable address",
            "host_unknown",
        ),
        (r"mailbox is full|quota exceed", "mailbox_full"),
        (r"an mx or srv record indicated no smtp service|no host found for existing smtp connection", "not_accept"),
        (r"delivery to (?:file|pipe) forbidden|local delivery failed", "system_error"),
        (r"too many \"received\" headers", "content_error"),
        (
            r"retry timeout exceeded|retry time not reached for any host after a long failure period|"
            r"have been failing for a long time",
            "expired",
        ),
    ),
)
