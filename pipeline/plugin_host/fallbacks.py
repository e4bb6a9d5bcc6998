"""Core fallbacks, registered as a plugin with trylast so any provider plugin can override them."""

from __future__ import annotations

from pipeline.config import AccountConfig
from pipeline.models import SendReply, Verdict
from pipeline.plugin_host.hookspecs import hookimpl


@hookimpl(trylast=True)
def mailpipe_classify_reply(account: AccountConfig | None, reply: SendReply) -> Verdict | None:
    from pipeline.feedback.replies import classify_reply

    return classify_reply(reply)
