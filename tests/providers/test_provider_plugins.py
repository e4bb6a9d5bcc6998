"""What every built-in provider plugin promises: valid presets, provider-gated hooks, no stray quirks."""

from __future__ import annotations

import importlib
import types
from typing import Any

import pytest

import pipeline.plugin_host.manager
from pipeline.config import AccountConfig, resolve_account
from pipeline.errors import ConfigError
from pipeline.models import RecipientEvent, SendReply, Verdict
from pipeline.plugin_host.manager import (
    PROVIDER_PLUGINS,
    LoadOptions,
    MailpipePluginManager,
    build_plugin_manager,
    presets,
    provider_family,
)
from pipeline.plugin_host.presets import Security

PROVIDERS = [name.removeprefix("plugins.") for name in PROVIDER_PLUGINS]
PRESET_NAMES = sorted(presets(build_plugin_manager(LoadOptions(load=frozenset()))))


def test_every_builtin_provider_plugin_supplies_its_preset(pm: MailpipePluginManager) -> None:
    known = presets(pm)
    for provider in PROVIDERS:
        assert provider in known, provider


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_each_preset_is_complete_and_resolves_for_an_account(name: str, pm: MailpipePluginManager) -> None:
    preset = presets(pm)[name]
    assert preset.title and preset.notes
    assert preset.limits.model_dump(exclude_none=True), "every preset carries default limits"
    assert preset.auth_methods
    assert preset.security != Security.NONE, "providers are reached over TLS"
    assert (preset.security == Security.TLS) == (preset.port == 465)
    if provider_family(name) != "smtp":
        assert preset.host, "a provider preset names its host"
    region = "us-east-1" if preset.requires_region else None
    host = None if preset.host else "mail.example.net"
    account = AccountConfig(name="a", provider=name, region=region, host=host, password="pw", from_email="a@b.example")
    resolved = resolve_account(account, preset)
    assert resolved.host and "{" not in resolved.host
    assert resolved.port == preset.port
    assert resolved.limits == preset.limits


@pytest.mark.parametrize("provider", PROVIDERS)
def test_classify_reply_uses_the_providers_rules_only_for_its_own_accounts(
    provider: str, kit: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    verdict = Verdict(event=RecipientEvent.DEFERRED, reason="rate_limited")
    seen: list[SendReply] = []

    def classify_reply(reply: SendReply) -> Verdict:
        seen.append(reply)
        return verdict

    rules = types.SimpleNamespace(classify_reply=classify_reply)
    monkeypatch.setitem(pipeline.plugin_host.manager._optional, f"plugins.{provider}.bounces", rules)
    plugin = importlib.import_module(f"plugins.{provider}")
    reply = SendReply(account="acct", code=452, text="4.5.3 whatever")
    other = "postmark" if provider != "postmark" else "sendgrid"
    own = kit.account(provider=provider, region="us-east-1" if provider == "ses" else None)

    assert plugin.mailpipe_classify_reply(account=own, reply=reply) is verdict
    assert plugin.mailpipe_classify_reply(account=kit.account(provider=other), reply=reply) is None
    assert plugin.mailpipe_classify_reply(account=None, reply=reply) is None
    assert seen == [reply]


def test_classify_reply_tolerates_a_provider_without_reply_rules(kit: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(pipeline.plugin_host.manager._optional, "plugins.smtp.bounces", None)
    from plugins import smtp

    reply = SendReply(account="acct", code=550, text="5.1.1 no such user")
    assert smtp.mailpipe_classify_reply(account=kit.account(provider="smtp"), reply=reply) is None


def test_a_region_variant_is_chosen_by_the_accounts_region(kit: Any) -> None:
    assert kit.preset(kit.account(provider="mailgun")).host == "smtp.mailgun.org"
    assert kit.preset(kit.account(provider="mailgun", region="EU")).host == "smtp.eu.mailgun.org"
    assert kit.preset(kit.account(provider="mailgun@eu")).host == "smtp.eu.mailgun.org"


def test_an_unknown_region_of_a_provider_with_listed_regions_names_the_known_ones(kit: Any) -> None:
    with pytest.raises(ConfigError, match="known: eu, us"):
        kit.preset(kit.account(provider="mailgun", region="asia"))


def test_messages_of_the_generic_provider_get_no_provider_headers(kit: Any) -> None:
    account = kit.account(provider="smtp", host="mail.example.net")
    routed = kit.prepared(account)
    assert routed.message.headers == {}
    assert routed.from_addr == "sales@acme.example"
