"""Reason codes that receiving providers print in their replies, whatever MTA wrote the bounce.

Orange / La Poste (orange.fr, wanadoo.fr, laposte.net) end each refusal with a code such as
`OFR_416`, `OFR006_102` or `LPN007_420`; its last three digits name the cause (Orange's
postmaster pages list them).
"""

from __future__ import annotations

import re

_ORANGE_CODE = re.compile(r"\b(?:ofr|lpn|lpnaaa|ouk)\d{0,3}[_-](\d{3})\b", re.I)
ORANGE_REASONS: dict[str, str] = {
    "101": "blocked",
    "102": "blocked",
    "103": "blocked",
    "104": "too_many_conn",
    "305": "security_error",
    "401": "auth_failure",
    "402": "security_error",
    "403": "rejected",
    "405": "rejected",
    "415": "rejected",
    "416": "user_unknown",
    "417": "mailbox_full",
    "420": "suspend",
    "421": "rejected",
    "426": "suspend",
    "505": "system_error",
    "506": "spam_detected",
    "510": "blocked",
    "514": "mesg_too_big",
    "517": "auth_failure",
    "630": "policy_violation",
    "999": "blocked",
}


def provider_reason(text: str) -> str | None:
    """The reason a provider's own code in a reply names, if it names one."""
    match = _ORANGE_CODE.search(text or "")
    return ORANGE_REASONS.get(match.group(1)) if match else None
