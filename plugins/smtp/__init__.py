"""The generic SMTP provider: any server, nothing assumed but the submission port."""

from __future__ import annotations

from pipeline.config import AccountConfig
from pipeline.models import RoutedMessage, SendReply, Verdict
from pipeline.plugin_host.hookspecs import hookimpl
from pipeline.plugin_host.manager import classify_with_rules, is_provider
from pipeline.plugin_host.presets import ProviderPreset

from . import mailbox
from .hints import hints_for
from .presets import NAME, PRESETS


@hookimpl
def mailpipe_provider_presets() -> list[ProviderPreset]:
    return list(PRESETS)


@hookimpl
def mailpipe_prepare_message(account: AccountConfig, message: RoutedMessage) -> None:
    # Opt-in for a mailbox server that checks the sender (options.rewrite_from = true).
    if is_provider(account, NAME) and account.options.get("rewrite_from") is True:
        mailbox.send_as_login(account, message)


@hookimpl
def mailpipe_classify_reply(account: AccountConfig | None, reply: SendReply) -> Verdict | None:
    return classify_with_rules(__name__, reply) if is_provider(account, NAME) else None


@hookimpl
def mailpipe_connection_hints(account: AccountConfig, error: str) -> list[str]:
    return hints_for(account, error) if is_provider(account, NAME) else []
