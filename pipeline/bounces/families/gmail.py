"""Gmail and Google Workspace delivery status notifications (old and new layouts)."""

from __future__ import annotations

from pipeline.bounces.families.base import Family, Marker

GMAIL = Family(
    name="gmail",
    markers=(
        Marker("from", r"mailer-daemon@(?:googlemail\.com|google\.com|gmail\.com)", 2),
        Marker("subject", r"^delivery status notification \((?:failure|delay)\)", 1),
        Marker(
            "body",
            r"^\*\* (?:address not found|message not delivered|message blocked|delivery incomplete|"
            r"message rejected|domain not found|recipient inbox full|message blocked)\b",
            2,
        ),
        Marker("body", r"delivery to the following recipients? (?:failed permanently|has been delayed|failed temporarily)", 2),
        Marker("body", r"technical details of (?:permanent|temporary) failure", 1),
        Marker("x-failed-recipients", r"@", 0),
    ),
    begin=(
        r"^\*\* [a-z ]+ \*\*",
        r"delivery to the following recipients? (?:failed|has been)",
        r"^\s*(?:your message wasn't delivered|there was a temporary problem delivering)",
    ),
    cut=(r"^\s*-{3,}\s*original message\s*-{3,}",),
    reasons=(
        (
            r"\*\* address not found \*\*|the email account that you tried to reach does not exist|"
            r"address couldn't be found, or is unable to receive mail",
            "user_unknown",
        ),
        (
            r"\*\* domain not found \*\*|dns error: domain name not found|"
            r"dns error:.{0,60}(?:does not exist|nxdomain)",
            "host_unknown",
        ),
        (r"recipient inbox full|inbox is out of storage space|over quota", "mailbox_full"),
        (r"the email account that you tried to reach is (?:disabled|inactive)", "suspend"),
    ),
)
