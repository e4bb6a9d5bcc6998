"""Windows and groupware servers: MailEnable, GroupWise, MDaemon, Kerio, IMail, SmarterMail."""

from __future__ import annotations

from pipeline.bounces.families.base import Family, Marker

MAILENABLE = Family(
    name="mailenable",
    markers=(
        Marker("body", r"^\s*mailenable: message delivery failure", 3),
        Marker("body", r"^\s*recipient:\s*\[smtp:", 2),
        Marker("body", r"\bME-E\d{4}\b", 2),
        Marker("x-mailer", r"mailenable", 1),
        Marker("subject", r"^message delivery failure", 1),
    ),
    begin=(r"^\s*(?:mailenable: )?message delivery failure", r"could not be reached"),
)

GROUPWISE = Family(
    name="groupwise",
    markers=(
        Marker("body", r"the message that you sent was undeliverable to the following", 3),
        Marker("x-mailer", r"groupwise", 2),
        Marker("body", r"possibly truncated original message follows", 1),
    ),
    begin=(r"the message that you sent was undeliverable",),
    cut=(r"^\s*possibly truncated original message follows",),
)

MDAEMON = Family(
    name="mdaemon",
    markers=(
        Marker("x-mddsn-message", r".", 3),
        Marker("x-mdaemon-deliver-to", r".", 1),
        Marker("body", r"the attached message had (?:permanent fatal|transient) delivery errors", 3),
        Marker("body", r"your message was not delivered to one or more recipients", 1),
        Marker("subject", r"^(?:permanent delivery failure|mail delivery failure|warning: temporary delivery failure)", 1),
    ),
    begin=(r"the attached message had", r"^\s*-{3,}\s*session transcript\s*-{3,}"),
    cut=(r"^\s*-{3,}\s*end transcript\s*-{3,}",),
)

KERIO = Family(
    name="kerio",
    markers=(
        Marker("body", r"your message did not reach some or all of the intended recipients", 2),
        Marker("body", r"the following recipient\(s\) could not be reached", 2),
        Marker("x-mailer", r"kerio", 2),
        Marker("received", r"kerio connect", 1),
    ),
    begin=(r"the following recipient\(s\) could not be reached", r"your message did not reach"),
)

IMAIL = Family(
    name="imail",
    markers=(
        Marker("subject", r"^undeliverable mail$", 1),
        Marker("x-mailer", r"<smtp32 v[\d.]+>", 2),
        Marker("body", r"^\s*(?:unknown user|user mailbox exceeds allowed size|body of message generated response)\s*:", 2),
        Marker("body", r"^\s*original message follows\.", 1),
    ),
    recipient_lines=(
        r"^\s*(?:unknown user|user mailbox exceeds allowed size|recipient address rejected|delivery failed|"
        r"smtp error|unable to deliver)[^:@]*:\s*<?(?P<addr>[^\s<>]+@[^\s<>]+)>?\s*(?P<diag>.*)$",
    ),
    reasons=(
        (r"unknown user\s*:", "user_unknown"),
        (r"user mailbox exceeds allowed size", "mailbox_full"),
        (r"requested action not taken: mailbox unavailable|invalid user", "user_unknown"),
        (r"mail server temporarily rejected message|delivery failed \d+ attempts", "expired"),
    ),
)

SMARTERMAIL = Family(
    name="smartermail",
    markers=(
        Marker("body", r"could not deliver message to the following recipient\(s\)", 2),
        Marker("body", r"^\s*failed recipient\s*:", 2),
        Marker("x-mailer", r"smartermail", 1),
    ),
    begin=(r"could not deliver message to the following recipient",),
    reasons=(
        (r"no mx records were found|failed to connect to the recipients mail server", "host_unknown"),
        (r"the mailbox is full|domain size limit has been exceeded", "mailbox_full"),
    ),
)
