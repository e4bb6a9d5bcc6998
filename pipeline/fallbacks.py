"""Core fallbacks, registered as a plugin with trylast so any provider plugin can override them."""

from __future__ import annotations

from .config import AccountConfig
from .hookspecs import hookimpl
from .models import SendReply, Verdict


@hookimpl(trylast=True)
def mailpipe_classify_reply(account: AccountConfig | None, reply: SendReply) -> Verdict | None:
    from .replies import classify_reply

    return classify_reply(reply)

