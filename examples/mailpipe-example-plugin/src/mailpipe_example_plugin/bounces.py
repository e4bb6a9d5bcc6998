"""What ACME Relay's replies mean; anything not listed is left to the other plugins (None)."""

from __future__ import annotations

import re

from pipeline.models import AccountSignal, RecipientEvent, SendReply, Verdict

_QUOTA = re.compile(r"ACME quota exhausted", re.IGNORECASE)


def classify_reply(reply: SendReply) -> Verdict | None:
    if not _QUOTA.search(reply.text):
        return None
    return Verdict(
        event=RecipientEvent.DEFERRED,
        reason="exceed_limit",
        code=reply.code,
        enhanced=reply.enhanced,
        text=reply.text,
        account_signal=AccountSignal.QUOTA_EXHAUSTED,
    )
