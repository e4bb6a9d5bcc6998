"""The plugin manager: load order, operator switches, misspelt hooks, drop-ins and an installed package."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import textwrap
import tomllib
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import pipeline.plugin_host.manager
from pipeline.cli import plugins_cmd
from pipeline.cli.plugins_cmd import register
from pipeline.config import AccountConfig, parse_config
from pipeline.errors import PluginError
from pipeline.feedback.webhooks import WebhookSettings
from pipeline.models import AccountSignal, DeliveryEvent, RecipientEvent, SendReply
from pipeline.plugin_host.manager import (
    ENTRY_POINT_GROUP,
    LoadOptions,
    PluginSource,
    build_plugin_manager,
    get_plugin_manager,
    plugin_manager_for,
    presets,
    reset_plugin_managers,
)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "mailpipe-example-plugin"
ENV_SWITCHES = ("MAILPIPE_PLUGINS", "MAILPIPE_LOAD_PLUGINS", "MAILPIPE_BLOCK_PLUGINS", "MAILPIPE_TRACE_PLUGINS")

DROP_IN = '''
"""A drop-in plugin: overrides SendGrid's preset, classifies ACME replies, parses ACME webhooks and bounces."""
from pipeline.plugin_host.hookspecs import hookimpl
from pipeline.models import DeliveryEvent, RecipientEvent, Verdict
from pipeline.plugin_host.presets import ProviderPreset

SEEN = []


@hookimpl
def mailpipe_provider_presets():
    return [ProviderPreset(name="sendgrid", title="SendGrid via our proxy", host="sg-proxy.internal.example")]


@hookimpl
def mailpipe_classify_reply(account, reply):
    if "DROPIN" in reply.text:
        return Verdict(event=RecipientEvent.BOUNCED, permanent=True, reason="user_unknown", text="from the drop-in")
    return None


@hookimpl
def mailpipe_parse_webhook(provider, headers, body, settings):
    if provider != "acme" or settings.options.get("token") != "t0k3n":
        return None
    return [DeliveryEvent(event=RecipientEvent.DELIVERED, event_id=body.decode(), provider="acme")]


@hookimpl
def mailpipe_parse_bounce(message):
    return {"parsed_by": "drop-in"} if message["Subject"] == "ACME bounce" else None


@hookimpl
def mailpipe_delivery_event(event):
    SEEN.append(event.event_id)
'''


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ENV_SWITCHES:
        monkeypatch.delenv(name, raising=False)
    reset_plugin_managers()
    yield
    reset_plugin_managers()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def account(provider: str) -> AccountConfig:
    return AccountConfig(name="a", provider=provider, from_email="a@acme.example")


# ---- built-ins and load order


def test_builtins_load_providers_then_core_fallbacks(monkeypatch: pytest.MonkeyPatch) -> None:
    pm = build_plugin_manager(LoadOptions())
    names = [p.name for p in pm.loaded() if p.source == PluginSource.BUILTIN]
    assert names[:2] == ["plugins.smtp", "plugins.sendgrid"]
    assert {"pipeline.plugin_host.fallbacks", "pipeline.plugin_host.hints"} <= set(names)
    # a provider registers only the hooks its tables feed: the generic SMTP provider has no reply rules
    assert pm.loaded()[0].hooks == ("mailpipe_connection_hints", "mailpipe_prepare_message", "mailpipe_provider_presets")
    assert pm.loaded()[1].hooks == (
        "mailpipe_classify_reply",
        "mailpipe_connection_hints",
        "mailpipe_parse_webhook",
        "mailpipe_prepare_message",
        "mailpipe_provider_presets",
    )


def test_the_bounce_hooks_module_is_registered_when_present_and_skipped_when_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    present = [p.name for p in build_plugin_manager(LoadOptions()).loaded()]
    assert ("pipeline.bounces.hooks" in present) == (ROOT / "pipeline" / "bounces" / "hooks.py").exists()
    monkeypatch.setattr(pipeline.plugin_host.manager, "OPTIONAL_CORE_PLUGINS", ("pipeline.not_written_yet",))
    monkeypatch.setattr(pipeline.plugin_host.manager, "BUILTIN_PLUGINS", ("plugins.smtp", "pipeline.not_written_yet"))
    assert [p.name for p in build_plugin_manager(LoadOptions()).loaded()] == ["plugins.smtp"]


def test_get_plugin_manager_is_shared_and_reset_builds_a_new_one() -> None:
    first = get_plugin_manager()
    assert get_plugin_manager() is first
    assert "sendgrid" in presets()
    reset_plugin_managers()
    assert get_plugin_manager() is not first


def test_a_drop_in_loads_after_the_builtins_and_overrides_them(tmp_path: Path) -> None:
    path = write(tmp_path / "acme_tweaks.py", DROP_IN)
    pm = build_plugin_manager(LoadOptions(paths=(path,)))
    last = pm.loaded()[-1]
    assert (last.name, last.source, last.origin) == ("acme_tweaks", PluginSource.DROP_IN, str(path))
    assert presets(pm)["sendgrid"].host == "sg-proxy.internal.example"
    verdict = pm.hook.mailpipe_classify_reply(account=account("sendgrid"), reply=SendReply(account="a", code=550, text="DROPIN"))
    assert verdict.text == "from the drop-in"


def test_webhook_bounce_and_delivery_event_hooks_reach_a_drop_in(tmp_path: Path) -> None:
    pm = build_plugin_manager(LoadOptions(paths=(write(tmp_path / "acme_tweaks.py", DROP_IN),)))
    settings = WebhookSettings(options={"token": "t0k3n"})
    events = pm.hook.mailpipe_parse_webhook(provider="acme", headers={}, body=b"ev-1", settings=settings)
    assert [(e.event, e.event_id) for e in events] == [(RecipientEvent.DELIVERED, "ev-1")]
    bounce = EmailMessage()
    bounce["Subject"] = "ACME bounce"
    assert pm.hook.mailpipe_parse_bounce(message=bounce) == {"parsed_by": "drop-in"}
    pm.hook.mailpipe_delivery_event(event=DeliveryEvent(event=RecipientEvent.OPENED, event_id="ev-2"))
    assert pm.get_plugin("acme_tweaks").SEEN == ["ev-2"]


def test_drop_ins_come_from_config_paths_relative_to_the_file_and_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "conf" / "local_plugins" / "from_config.py", "from pipeline.plugin_host.hookspecs import hookimpl\n")
    package = tmp_path / "env_pkg"
    write(package / "__init__.py", "from .rules import mailpipe_connection_hints  # noqa: F401\n")
    write(
        package / "rules.py",
        """
        from pipeline.plugin_host.hookspecs import hookimpl

        @hookimpl
        def mailpipe_connection_hints(account, error):
            return ["from a drop-in package"]
        """,
    )
    monkeypatch.setenv("MAILPIPE_PLUGINS", str(package))
    config = parse_config(
        '[plugins]\npaths = ["local_plugins"]\n[[accounts]]\nname = "a"\nhost = "h.example"\nfrom_email = "a@b.example"\n'
        '[default]\naccount = "a"\n',
        tmp_path / "conf" / "mailpipe.toml",
    )
    pm = plugin_manager_for(config)
    drop_ins = {p.name: p.source for p in pm.loaded() if p.source == PluginSource.DROP_IN}
    assert drop_ins == {"from_config": PluginSource.DROP_IN, "env_pkg": PluginSource.DROP_IN}
    assert plugin_manager_for(config) is pm
    hints = [line for batch in pm.hook.mailpipe_connection_hints(account=account("smtp"), error="x") for line in batch]
    assert "from a drop-in package" in hints


# ---- operator switches


def test_load_plugins_restricts_drop_ins_and_entry_points_but_not_builtins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one = write(tmp_path / "one.py", "x = 1\n")
    two = write(tmp_path / "two.py", "x = 2\n")
    monkeypatch.setenv("MAILPIPE_PLUGINS", os.pathsep.join([str(one), str(two)]))
    monkeypatch.setenv("MAILPIPE_LOAD_PLUGINS", "two")
    pm = get_plugin_manager()
    names = [p.name for p in pm.loaded()]
    assert "two" in names and "one" not in names and "plugins.gmail" in names
    assert pm.skipped == {"one": "not listed in MAILPIPE_LOAD_PLUGINS"}


def test_block_plugins_blocks_builtin_providers_by_short_name_but_never_core(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILPIPE_BLOCK_PLUGINS", "sendgrid, plugins.mailgun, pipeline.plugin_host.fallbacks")
    pm = get_plugin_manager()
    names = {p.name for p in pm.loaded()}
    assert "plugins.sendgrid" not in names and "plugins.mailgun" not in names
    assert "pipeline.plugin_host.fallbacks" in names
    assert "sendgrid" not in presets(pm) and "gmail" in presets(pm)
    assert set(pm.skipped) == {"plugins.sendgrid", "plugins.mailgun"}


def test_trace_plugins_logs_every_hook_call(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("MAILPIPE_TRACE_PLUGINS", "1")
    pm = get_plugin_manager()
    with caplog.at_level(logging.INFO, logger="mailpipe.plugins"):
        pm.hook.mailpipe_connection_hints(account=account("smtp"), error="tcp: connection refused")
    lines = [r.getMessage() for r in caplog.records]
    assert any(
        line.startswith("plugin hook mailpipe_connection_hints → ") and "pipeline.plugin_host.hints" in line for line in lines
    )
    assert any(line.startswith("plugin hook mailpipe_connection_hints returned") for line in lines)


# ---- mistakes are errors at start-up


def test_a_misspelt_hook_names_the_hook_and_suggests_the_right_one(tmp_path: Path) -> None:
    path = write(
        tmp_path / "typo.py",
        """
        from pipeline.plugin_host.hookspecs import hookimpl

        @hookimpl
        def mailpipe_prepare_mesage(account, message):
            pass
        """,
    )
    expected = r"typo .* unknown hook mailpipe_prepare_mesage; did you mean mailpipe_prepare_message\?"
    with pytest.raises(PluginError, match=expected):
        build_plugin_manager(LoadOptions(paths=(path,)))


def test_an_unmarked_hook_function_is_an_error_not_silently_ignored(tmp_path: Path) -> None:
    path = write(tmp_path / "unmarked.py", "def mailpipe_provider_presets():\n    return []\n")
    with pytest.raises(PluginError, match="defines mailpipe_provider_presets without @hookimpl"):
        build_plugin_manager(LoadOptions(paths=(path,)))


def test_a_hook_with_a_wrong_argument_name_is_an_error(tmp_path: Path) -> None:
    path = write(
        tmp_path / "badargs.py",
        """
        from pipeline.plugin_host.hookspecs import hookimpl

        @hookimpl
        def mailpipe_prepare_message(acount, message):
            pass
        """,
    )
    with pytest.raises(PluginError, match="badargs"):
        build_plugin_manager(LoadOptions(paths=(path,)))


def test_a_drop_in_that_fails_to_import_or_does_not_exist_is_an_error(tmp_path: Path) -> None:
    broken = write(tmp_path / "broken.py", "raise RuntimeError('boom')\n")
    with pytest.raises(PluginError, match=r"broken\.py failed to import: boom"):
        build_plugin_manager(LoadOptions(paths=(broken,)))
    with pytest.raises(PluginError, match="does not exist"):
        build_plugin_manager(LoadOptions(paths=(tmp_path / "missing.py",)))


def test_two_plugins_of_one_name_clash(tmp_path: Path) -> None:
    a = write(tmp_path / "a" / "same.py", "x = 1\n")
    b = write(tmp_path / "b" / "same.py", "x = 2\n")
    with pytest.raises(PluginError, match="clashes"):
        build_plugin_manager(LoadOptions(paths=(a, b)))


# ---- the example package, installed and found through its entry point

NETWORK_TROUBLE = (
    "Could not find a version",
    "No matching distribution",
    "NewConnectionError",
    "Failed to establish",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "ConnectTimeout",
)


def install_example(target: Path, work: Path) -> str:
    """``pip install --no-deps --target``; without a package index (no build backend), lay it out by hand."""
    source = work / "src-copy"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",  # setuptools from this venv (a dev dependency): no index, seconds faster
            "--disable-pip-version-check",
            "--target",
            str(target),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    if result.returncode == 0:
        return "pip"
    if not any(marker in result.stdout + result.stderr for marker in NETWORK_TROUBLE):
        pytest.fail(f"pip could not install the example plugin:\n{result.stdout}\n{result.stderr}")
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    shutil.copytree(EXAMPLE / "src" / "mailpipe_example_plugin", target / "mailpipe_example_plugin")
    info = target / f"mailpipe_example_plugin-{project['version']}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    points = project["entry-points"][ENTRY_POINT_GROUP]
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n" + "".join(f"{k} = {v}\n" for k, v in points.items()))
    return "layout"


@pytest.fixture(scope="module")
def example_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("example")
    target = work / "site"
    install_example(target, work)
    return target


@pytest.fixture
def example_installed(example_site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(example_site))
    yield example_site
    sys.modules.pop("mailpipe_example_plugin", None)


def test_the_example_package_is_loaded_through_its_entry_point(example_installed: Path) -> None:
    pm = build_plugin_manager(LoadOptions())
    found = {p.name: p for p in pm.loaded()}["example"]
    assert (found.source, found.origin) == (PluginSource.ENTRY_POINT, "mailpipe-example-plugin 0.1.0")
    assert found.hooks == ("mailpipe_classify_reply", "mailpipe_connection_hints", "mailpipe_provider_presets")
    assert presets(pm)["acme-relay"].host == "smtp.acme-relay.example"

    reply = SendReply(account="a", code=452, enhanced="4.5.3", text="4.5.3 ACME quota exhausted for today")
    verdict = pm.hook.mailpipe_classify_reply(account=account("acme-relay"), reply=reply)
    assert (verdict.event, verdict.account_signal) == (RecipientEvent.DEFERRED, AccountSignal.QUOTA_EXHAUSTED)


def test_the_example_package_obeys_the_load_and_block_switches(example_installed: Path) -> None:
    assert "example" in build_plugin_manager(LoadOptions(load=frozenset({"mailpipe-example-plugin"}))).origins
    nothing = build_plugin_manager(LoadOptions(load=frozenset()))
    assert "example" not in nothing.origins and nothing.skipped["example"] == "not listed in MAILPIPE_LOAD_PLUGINS"
    blocked = build_plugin_manager(LoadOptions(block=frozenset({"example"})))
    assert blocked.skipped["example"] == "blocked by MAILPIPE_BLOCK_PLUGINS"


def test_a_drop_in_overrides_an_entry_point_plugin(example_installed: Path, tmp_path: Path) -> None:
    override = write(
        tmp_path / "acme_override.py",
        """
        from pipeline.plugin_host.hookspecs import hookimpl
        from pipeline.plugin_host.presets import ProviderPreset

        @hookimpl
        def mailpipe_provider_presets():
            return [ProviderPreset(name="acme-relay", title="ACME via VPN", host="10.0.0.25.example")]
        """,
    )
    pm = build_plugin_manager(LoadOptions(paths=(override,)))
    order = [p.source for p in pm.loaded()]
    assert order.index(PluginSource.ENTRY_POINT) < order.index(PluginSource.DROP_IN)
    assert presets(pm)["acme-relay"].title == "ACME via VPN"


# ---- the CLI commands


def cli_app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def test_providers_lists_every_preset_and_shows_one_with_its_notes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plugins_cmd.console, "width", 220)
    table = CliRunner().invoke(cli_app(), ["providers"])
    assert table.exit_code == 0, table.output
    for name in ("sendgrid", "mailgun@eu", "ses", "gmail+workspace", "postmark", "zoho@in", "yahoo", "outlook", "smtp"):
        assert f"│ {name} " in table.output
    assert "30/min 10,000/day" in table.output and "email-smtp.{region}.amazonaws.com" in table.output
    one = CliRunner().invoke(cli_app(), ["providers", "sendgrid"])
    assert one.exit_code == 0 and 'literal string "apikey"' in one.output
    assert CliRunner().invoke(cli_app(), ["providers", "nope"]).exit_code == 2


def test_plugins_lists_sources_and_hooks_and_what_was_not_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plugins_cmd.console, "width", 220)
    monkeypatch.setenv("MAILPIPE_PLUGINS", str(write(tmp_path / "acme_tweaks.py", DROP_IN)))
    monkeypatch.setenv("MAILPIPE_BLOCK_PLUGINS", "yahoo")
    result = CliRunner().invoke(cli_app(), ["plugins"])
    assert result.exit_code == 0, result.output
    assert "│ acme_tweaks " in result.output and "drop-in" in result.output
    assert "classify_reply, connection_hints, prepare_message, provider_presets" in result.output
    assert "not loaded plugins.yahoo: blocked by MAILPIPE_BLOCK_PLUGINS" in result.output


def test_a_plugin_error_is_reported_without_a_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILPIPE_PLUGINS", str(write(tmp_path / "broken.py", "raise RuntimeError('boom')\n")))
    result = CliRunner().invoke(cli_app(), ["plugins"])
    assert result.exit_code == 2
    assert "failed to import: boom" in " ".join(result.output.split())
