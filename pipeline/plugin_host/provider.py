"""A provider plugin built from its tables: the hook wiring every provider shares, written once.

A provider package keeps its knowledge in conventional modules and its ``__init__.py`` names them::

    from pipeline.plugin_host.provider import provider_plugin
    from . import bounces, hints, presets, quirks, webhooks

    plugin = provider_plugin(presets, bounces=bounces, hints=hints, quirks=quirks, webhooks=webhooks)

What each module must define (all but ``presets`` are optional):

- ``presets``: ``NAME`` (the provider family, e.g. ``"sendgrid"``) and ``PRESETS`` (its presets).
- ``bounces``: ``classify_reply(reply) -> Verdict | None`` and/or ``parse_bounce(message) -> BounceReport | None``.
- ``hints``: a ``HINTS`` table of :class:`~pipeline.plugin_host.hints.Hint` rows, or
  ``hints_for(account, error) -> list[str]`` when a table cannot say it.
- ``quirks``: ``prepare(account, message)``, changing the routed message in place.
- ``webhooks``: ``parse_webhook(headers, body, settings) -> list[DeliveryEvent]``.

Every hook but the presets and the bounce parser answers only for accounts (or webhook paths) of
the provider's own family. The plugin manager registers a module's ``plugin`` attribute when it is
a :class:`ProviderPlugin`; a plugin written with ``@hookimpl`` functions works as before.
"""

from __future__ import annotations

from collections.abc import Callable
from email.message import Message
from types import ModuleType
from typing import Any, cast

from pipeline.config import AccountConfig
from pipeline.errors import PluginError
from pipeline.feedback.webhooks import WebhookSettings
from pipeline.models import DeliveryEvent, RoutedMessage, SendReply, Verdict
from pipeline.plugin_host.hints import Hint, matching
from pipeline.plugin_host.hookspecs import hookimpl
from pipeline.plugin_host.manager import ProviderPlugin, is_provider
from pipeline.plugin_host.presets import ProviderPreset


def _required(module: ModuleType, attr: str, what: str) -> Any:
    value = getattr(module, attr, None)
    if value is None:
        raise PluginError(f"provider plugin {module.__name__}: {what} module defines no {attr}")
    return value


def _callable(module: ModuleType, attr: str) -> Callable[..., Any] | None:
    value = getattr(module, attr, None)
    if value is not None and not callable(value):
        raise PluginError(f"provider plugin {module.__name__}: {attr} is not a function")
    return cast("Callable[..., Any] | None", value)


def provider_plugin(
    presets: ModuleType,
    *,
    bounces: ModuleType | None = None,
    hints: ModuleType | None = None,
    quirks: ModuleType | None = None,
    webhooks: ModuleType | None = None,
) -> ProviderPlugin:
    """The plugin for a provider whose modules are given; raises PluginError naming a missing piece."""
    name = _required(presets, "NAME", "presets")
    if not isinstance(name, str) or not name:
        raise PluginError(f"provider plugin {presets.__name__}: NAME must be a non-empty string")
    table: tuple[ProviderPreset, ...] = tuple(_required(presets, "PRESETS", "presets"))
    plugin = ProviderPlugin(name, presets.__name__.rpartition(".")[0] or presets.__name__)

    @hookimpl
    def mailpipe_provider_presets() -> list[ProviderPreset]:
        return list(table)

    plugin.mailpipe_provider_presets = mailpipe_provider_presets  # type: ignore[attr-defined]

    classify = _callable(bounces, "classify_reply") if bounces else None
    if classify is not None:
        rules = classify

        @hookimpl
        def mailpipe_classify_reply(account: AccountConfig | None, reply: SendReply) -> Verdict | None:
            return cast("Verdict | None", rules(reply)) if is_provider(account, name) else None

        plugin.mailpipe_classify_reply = mailpipe_classify_reply  # type: ignore[attr-defined]

    parse = _callable(bounces, "parse_bounce") if bounces else None
    if parse is not None:
        parser = parse

        @hookimpl
        def mailpipe_parse_bounce(message: Message) -> Any | None:
            return parser(message)

        plugin.mailpipe_parse_bounce = mailpipe_parse_bounce  # type: ignore[attr-defined]

    if hints is not None:
        hints_for = _callable(hints, "hints_for")
        rows: tuple[Hint, ...] = tuple(getattr(hints, "HINTS", ()))
        if hints_for is None and not rows:
            raise PluginError(f"provider plugin {hints.__name__}: hints module defines neither HINTS nor hints_for")

        @hookimpl
        def mailpipe_connection_hints(account: AccountConfig, error: str) -> list[str]:
            if not is_provider(account, name):
                return []
            found = matching(rows, account, error) if rows else []
            return found + (list(hints_for(account, error)) if hints_for is not None else [])

        plugin.mailpipe_connection_hints = mailpipe_connection_hints  # type: ignore[attr-defined]

    if quirks is not None:
        prepare = _required(quirks, "prepare", "quirks")

        @hookimpl
        def mailpipe_prepare_message(account: AccountConfig, message: RoutedMessage) -> None:
            if is_provider(account, name):
                prepare(account, message)

        plugin.mailpipe_prepare_message = mailpipe_prepare_message  # type: ignore[attr-defined]

    if webhooks is not None:
        parse_webhook = _required(webhooks, "parse_webhook", "webhooks")

        @hookimpl
        def mailpipe_parse_webhook(
            provider: str, headers: dict[str, str], body: bytes, settings: WebhookSettings
        ) -> list[DeliveryEvent] | None:
            return cast("list[DeliveryEvent]", parse_webhook(headers, body, settings)) if provider == name else None

        plugin.mailpipe_parse_webhook = mailpipe_parse_webhook  # type: ignore[attr-defined]

    return plugin
