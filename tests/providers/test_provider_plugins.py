"""What every built-in provider plugin promises: valid presets, provider-gated hooks, no stray quirks."""

from __future__ import annotations

import importlib
import textwrap
import types
from pathlib import Path
from typing import Any

import pytest

import plugins
from pipeline.config import AccountConfig, resolve_account
from pipeline.errors import ConfigError, PluginError
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
from pipeline.plugin_host.provider import provider_plugin

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
def test_classify_reply_uses_the_providers_rules_only_for_its_own_accounts(provider: str, kit: Any) -> None:
    verdict = Verdict(event=RecipientEvent.DEFERRED, reason="rate_limited")
    seen: list[SendReply] = []

    def classify_reply(reply: SendReply) -> Verdict:
        seen.append(reply)
        return verdict

    package = importlib.import_module(f"plugins.{provider}")
    rules = types.ModuleType(f"plugins.{provider}.bounces")
    rules.classify_reply = classify_reply  # type: ignore[attr-defined]
    plugin: Any = provider_plugin(package.presets, bounces=rules)
    reply = SendReply(account="acct", code=452, text="4.5.3 whatever")
    other = "postmark" if provider != "postmark" else "sendgrid"
    own = kit.account(provider=provider, region="us-east-1" if provider == "ses" else None)

    assert plugin.mailpipe_classify_reply(account=own, reply=reply) is verdict
    assert plugin.mailpipe_classify_reply(account=kit.account(provider=other), reply=reply) is None
    assert plugin.mailpipe_classify_reply(account=None, reply=reply) is None
    assert seen == [reply]


def test_a_provider_without_reply_rules_registers_no_classify_hook(pm: MailpipePluginManager) -> None:
    from plugins import smtp

    assert not hasattr(smtp.plugin, "mailpipe_classify_reply")
    assert "mailpipe_classify_reply" not in {hook.name for hook in pm.get_hookcallers(pm.get_plugin("plugins.smtp")) or []}


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


# ---- a provider plugin is its tables; plugins written with @hookimpl keep working


def _write_package(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True)
    for name, text in files.items():
        (root / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return root


TABLES = {
    "__init__.py": """
        from pipeline.plugin_host.provider import provider_plugin
        from . import bounces, presets, quirks

        plugin = provider_plugin(presets, bounces=bounces, quirks=quirks)
    """,
    "presets.py": """
        from pipeline.plugin_host.presets import ProviderPreset
        NAME = "tabled"
        PRESETS = (ProviderPreset(name=NAME, title="Tabled relay", host="smtp.tabled.example"),)
    """,
    "bounces.py": """
        from pipeline.models import RecipientEvent, Verdict
        def classify_reply(reply):
            if "TABLED" not in reply.text:
                return None
            return Verdict(event=RecipientEvent.BOUNCED, permanent=True, reason="user_unknown")
    """,
    "quirks.py": """
        def prepare(account, message):
            message.message.headers["X-Tabled"] = "1"
    """,
}

HOOKIMPL_STYLE = """
from pipeline.models import RecipientEvent, Verdict
from pipeline.plugin_host.hookspecs import hookimpl
from pipeline.plugin_host.presets import ProviderPreset


@hookimpl
def mailpipe_provider_presets():
    return [ProviderPreset(name="legacy", title="Legacy relay", host="smtp.legacy.example")]


@hookimpl
def mailpipe_classify_reply(account, reply):
    if account is None or account.provider != "legacy" or "LEGACY" not in reply.text:
        return None
    return Verdict(event=RecipientEvent.DEFERRED, reason="rate_limited")
"""


def test_a_table_built_plugin_and_a_hookimpl_plugin_load_side_by_side(tmp_path: Path, kit: Any) -> None:
    tabled = _write_package(tmp_path / "tabled", TABLES)
    legacy = tmp_path / "legacy.py"
    legacy.write_text(HOOKIMPL_STYLE, encoding="utf-8")
    pm = build_plugin_manager(LoadOptions(paths=(tabled, legacy)))
    loaded = {p.name: p.hooks for p in pm.loaded()}
    assert loaded["tabled"] == ("mailpipe_classify_reply", "mailpipe_prepare_message", "mailpipe_provider_presets")
    assert loaded["legacy"] == ("mailpipe_classify_reply", "mailpipe_provider_presets")
    assert {"tabled", "legacy", "sendgrid"} <= set(presets(pm))

    reply = SendReply(account="a", code=550, text="TABLED LEGACY 5.1.1 no such user")
    tabled_account = kit.account(provider="tabled", host="smtp.tabled.example")
    legacy_account = kit.account(provider="legacy", host="smtp.legacy.example")
    assert pm.hook.mailpipe_classify_reply(account=tabled_account, reply=reply).reason == "user_unknown"
    assert pm.hook.mailpipe_classify_reply(account=legacy_account, reply=reply).reason == "rate_limited"
    gmail = kit.account(provider="gmail")
    assert pm.hook.mailpipe_classify_reply(account=gmail, reply=reply).reason != "rate_limited"


def test_a_table_built_plugin_applies_its_quirks_only_to_its_own_accounts(tmp_path: Path, kit: Any) -> None:
    package = _write_package(tmp_path / "tabled", TABLES)
    pm = build_plugin_manager(LoadOptions(paths=(package,)))
    plugin: Any = pm.get_plugin("tabled")
    own = kit.routed(kit.account(provider="smtp", host="mail.example.net"))
    plugin.mailpipe_prepare_message(account=kit.account(provider="tabled@eu"), message=own)
    assert own.message.headers == {"X-Tabled": "1"}
    other = kit.routed(kit.account(provider="smtp", host="mail.example.net"))
    plugin.mailpipe_prepare_message(account=kit.account(provider="sendgrid"), message=other)
    assert other.message.headers == {}


def test_missing_tables_and_mixed_styles_are_errors_naming_the_module(tmp_path: Path) -> None:
    no_name = _write_package(tmp_path / "noname", {**TABLES, "presets.py": "PRESETS = ()\n"})
    with pytest.raises(PluginError, match=r"presets module defines no NAME"):
        build_plugin_manager(LoadOptions(paths=(no_name,)))
    no_prepare = _write_package(tmp_path / "noprepare", {**TABLES, "quirks.py": "X = 1\n"})
    with pytest.raises(PluginError, match=r"quirks module defines no prepare"):
        build_plugin_manager(LoadOptions(paths=(no_prepare,)))
    mixed = (
        textwrap.dedent(TABLES["__init__.py"])
        + "\nfrom pipeline.plugin_host.hookspecs import hookimpl\n\n@hookimpl\ndef mailpipe_delivery_event(event):\n    pass\n"
    )
    both = _write_package(tmp_path / "both", {**TABLES, "__init__.py": mixed})
    with pytest.raises(PluginError, match=r"both a provider_plugin\(\) and hook functions of its own"):
        build_plugin_manager(LoadOptions(paths=(both,)))


def test_builtin_provider_packages_are_only_their_table_names() -> None:
    root = Path(plugins.__file__).parent
    for provider in PROVIDERS:
        source = (root / provider / "__init__.py").read_text(encoding="utf-8")
        assert "@hookimpl" not in source and "plugin = provider_plugin(presets" in source, provider
