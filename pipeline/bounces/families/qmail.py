"""qmail (qmail-send, qmail-remote, qmail-ldap patches) and netqmail forks."""

from __future__ import annotations

from pipeline.bounces.families.base import Family, Marker

QMAIL = Family(
    name="qmail",
    markers=(
        Marker("body", r"^hi\. this is the qmail", 2),
        Marker("subject", r"^failure notice$", 1),
        Marker("received", r"\(qmail \d+ invoked (?:for bounce|from network)\)", 1),
    ),
    begin=(r"^hi\. this is the qmail", r"^i'm afraid i wasn't able to deliver"),
    cut=(r"^---\s*below this line is a copy of the message",),
    recipient_lines=(r"^\s*<(?P<addr>[^\s<>]+@[^\s<>]+)>:\s*$",),
    reasons=(
        (r"no mailbox here by that name|does not like recipient", "user_unknown"),
        (r"disk quota exceeded", "mailbox_full"),
        (r"message size exceeds fixed maximum message size|exceeds my databytes limit", "mesg_too_big"),
        (r"sorry, i couldn't find any host", "host_unknown"),
        (r"mailbox unavailable \(not enough free space\)", "system_full"),
        (
            r"sorry, i wasn't able to establish an smtp connection|sorry, i couldn't find a mail exchanger|"
            r"although i'm listed as a best-preference mx",
            "network_error",
        ),
        (r"mailaddress is administrative?le?y disabled", "suspend"),
        (r"the message exeeded the maximum size the user accepts", "exceed_limit"),
        (r"but sender was rejected", "rejected"),
        (r"but my name was rejected|but greeting failed", "blocked"),
        (r"this message has been in the queue too long", "expired"),
    ),
)
