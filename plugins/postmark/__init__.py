"""Postmark: server token as username and password, message stream and Metadata headers."""

from __future__ import annotations

from pipeline.config import AccountConfig
from pipeline.feedback.webhooks import WebhookSettings
from pipeline.models import DeliveryEvent, RoutedMessage, SendReply, Verdict
from pipeline.plugin_host.hints import matching
from pipeline.plugin_host.hookspecs import hookimpl
from pipeline.plugin_host.manager import classify_with_rules, is_provider
from pipeline.plugin_host.presets import ProviderPreset

from . import quirks, webhooks
from .hints import HINTS
from .presets import NAME, PRESETS


@hookimpl
def mailpipe_provider_presets() -> list[ProviderPreset]:
    return list(PRESETS)


@hookimpl
def mailpipe_prepare_message(account: AccountConfig, message: RoutedMessage) -> None:
    if is_provider(account, NAME):
        quirks.prepare(account, message)


@hookimpl
def mailpipe_classify_reply(account: AccountConfig | None, reply: SendReply) -> Verdict | None:
    return classify_with_rules(__name__, reply) if is_provider(account, NAME) else None


@hookimpl
def mailpipe_connection_hints(account: AccountConfig, error: str) -> list[str]:
    return matching(HINTS, account, error) if is_provider(account, NAME) else []


@hookimpl
def mailpipe_parse_webhook(
    provider: str, headers: dict[str, str], body: bytes, settings: WebhookSettings
) -> list[DeliveryEvent] | None:
    return webhooks.parse_webhook(headers, body, settings) if provider == NAME else None
