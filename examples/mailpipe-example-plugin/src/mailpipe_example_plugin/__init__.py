"""An example third-party mailpipe plugin.

It adds one provider preset ("acme-relay", a made-up relay) and one rule for that provider's
replies: ``452 4.5.3 ACME quota exhausted`` means the *account* ran out of its daily quota, not
that the recipient has a problem. Everything else is left to the other plugins (return None).

Installed, it is found through its entry point (group ``mailpipe.plugins``); nothing in mailpipe
names it.
"""

from __future__ import annotations

import re

from pipeline.config import AccountConfig
from pipeline.models import AccountSignal, RecipientEvent, SendReply, Verdict
from pipeline.plugin_host.hookspecs import hookimpl
from pipeline.plugin_host.presets import Limits, ProviderPreset, Security

PROVIDER = "acme-relay"
_QUOTA = re.compile(r"ACME quota exhausted", re.IGNORECASE)


@hookimpl
def mailpipe_provider_presets() -> list[ProviderPreset]:
    return [
        ProviderPreset(
            name=PROVIDER,
            title="ACME Relay (example plugin)",
            host="smtp.acme-relay.example",
            port=2525,
            security=Security.STARTTLS,
            username="relay",
            limits=Limits(per_second=2, per_day=5000),  # ACME's (imaginary) published plan limits
            notes=("Installed by mailpipe-example-plugin.",),
        )
    ]


@hookimpl
def mailpipe_classify_reply(account: AccountConfig | None, reply: SendReply) -> Verdict | None:
    if account is None or account.provider != PROVIDER or not _QUOTA.search(reply.text):
        return None
    return Verdict(
        event=RecipientEvent.DEFERRED,
        reason="exceed_limit",
        code=reply.code,
        enhanced=reply.enhanced,
        text=reply.text,
        account_signal=AccountSignal.QUOTA_EXHAUSTED,
    )


@hookimpl
def mailpipe_connection_hints(account: AccountConfig, error: str) -> list[str]:
    if account.provider != PROVIDER or not error.startswith("auth:"):
        return []
    return ['ACME Relay logs in as "relay" with the relay token from the ACME console.']
