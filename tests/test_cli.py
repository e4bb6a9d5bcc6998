"""The CLI as users run it: submit a JSONL file, read an event's log, run the demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
import typer
import typer.main
from rich.text import Text
from testbed import account_toml
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.smtp.devsmtp import DevSMTPServer, TLSFiles
from pipeline.state.status import StatusStore


def test_submit_reports_bad_lines_by_number_and_still_submits_the_good_ones(
    config: object, write_config, tmp_path: Path, redis_client: redis.Redis
) -> None:
    path = write_config()
    leads = tmp_path / "leads.jsonl"
    lines = [
        json.dumps({"event_id": "l1", "to": "a@receiver.example", "template": "hello"}),
        "{not json",
        "",
        json.dumps({"event_id": "l2", "to": "bad address", "template": "hello"}),
        json.dumps({"event_id": "l3", "to": "c@receiver.example", "template": "hello"}),
    ]
    leads.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(app, ["submit", str(leads), "--config", str(path)])
    assert result.exit_code == 1
    assert "accepted 2, duplicates 0, refused 2" in result.stdout
    status = StatusStore(redis_client)
    assert status.get("default", "l1") is not None and status.get("default", "l3") is not None
    assert status.get("default", "l2") is None
    assert redis_client.llen("mailpipe:default:refused") == 2


def test_log_shows_the_history_of_an_event(config: object, write_config, redis_client: redis.Redis) -> None:
    from pipeline.config import Config
    from pipeline.submit import Submitter

    assert isinstance(config, Config)
    Submitter(config).submit([{"event_id": "logged", "to": "a@receiver.example", "template": "hello"}])
    result = CliRunner().invoke(app, ["log", "logged", "--json", "--config", str(write_config())])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["state"] == "accepted" and data["history"][0]["stage"] == "submit"
    missing = CliRunner().invoke(app, ["log", "nope", "--config", str(write_config())])
    assert missing.exit_code == 1


def test_the_demo_runs_the_main_job_and_reports_every_outcome(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MAILPIPE_CONFIG"}
    done = subprocess.run(
        [sys.executable, "-P", "-m", "pipeline.cli", "demo", "--out", str(tmp_path / "demo"), "--events", "30"],
        capture_output=True,
        text=True,
        timeout=240,
        env=env | {"COLUMNS": "160"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for expected in ("denmark", "cold-outreach", "default", "suppressed", "rejected", "bounced", "all 53 accepted events final"):
        assert expected in out
    assert "refused event demo-bad-address" in out
    assert "globex connected globex-main over the API (HTTP 201" in out and "auth ok" in out
    assert "switches its active mailbox to globex-backup over the API: HTTP 200" in out
    rows = [line.split("│") for line in out.splitlines() if line.startswith("│ globex")]
    per_account = {cells[3].strip(): int(cells[5]) for cells in rows if cells[4].strip() == "sent"}
    assert per_account == {"globex/globex-main": 10, "globex/globex-backup": 10}, out
    assert len(list((tmp_path / "demo" / "maildir" / "new").iterdir())) == 30  # the platform's server
    assert len(list((tmp_path / "demo" / "maildir-globex" / "new").iterdir())) == 20  # globex's own provider


# ---- output fit for scripts: --json everywhere, nothing cut short when piped, real defaults in --help

LISTING_COMMANDS = (("providers",), ("plugins",), ("accounts", "list"), ("accounts", "status"), ("status",), ("log",))


def _command(path: tuple[str, ...]) -> Any:
    command: Any = typer.main.get_command(app)
    for name in path:
        assert hasattr(command, "get_command"), path
        found = command.get_command(command.context_class(command), name)
        assert found is not None, f"no command {' '.join(path)}"
        command = found
    return command


@pytest.mark.parametrize("path", LISTING_COMMANDS, ids=" ".join)
def test_every_listing_command_takes_json(path: tuple[str, ...]) -> None:
    options = {opt for param in _command(path).params for opt in getattr(param, "opts", [])}
    assert "--json" in options


def _all_commands(command: Any, prefix: str = "") -> list[tuple[str, Any]]:
    out = [(prefix or "mailpipe", command)]
    if hasattr(command, "list_commands"):
        context = command.context_class(command)
        for name in command.list_commands(context):
            sub = command.get_command(context, name)
            if sub is not None:
                out += _all_commands(sub, f"{prefix} {name}".strip())
    return out


def test_no_help_text_loses_a_bracket_to_markup() -> None:
    """Typer renders help as rich markup: "[serve] host" printed as " host" before it was escaped."""
    for name, command in _all_commands(typer.main.get_command(app)):
        for param in command.params:
            text = getattr(param, "help", None) or ""
            assert Text.from_markup(text).plain == text.replace("\\[", "["), f"{name} {param.name}: {text!r}"


def test_serve_help_shows_the_real_defaults() -> None:
    result = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "the config's [serve] host, else 127.0.0.1" in result.output
    assert "the config's [serve] port, else 8025" in result.output


def test_piped_providers_table_keeps_every_name_whole(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "MAILPIPE_CONFIG")}
    done = subprocess.run(
        [sys.executable, "-P", "-m", "pipeline.cli", "providers"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    names = {line.split("│")[1].strip() for line in done.stdout.splitlines() if line.startswith("│")}
    assert {"sendgrid", "mailgun@eu", "gmail+workspace", "email-smtp.{region}.amazonaws.com"} & names
    rows = [line for line in done.stdout.splitlines() if "sendgrid" in line]
    assert rows and "smtp.sendgrid.net" in rows[0] and "…" not in done.stdout


def test_providers_and_plugins_json_list_every_builtin() -> None:
    providers = json.loads(CliRunner().invoke(app, ["providers", "--json"]).stdout)
    assert {"sendgrid", "mailgun@eu", "ses", "smtp"} <= {p["name"] for p in providers}
    sendgrid = next(p for p in providers if p["name"] == "sendgrid")
    assert sendgrid["host"] == "smtp.sendgrid.net" and sendgrid["username"] == "apikey"
    one = json.loads(CliRunner().invoke(app, ["providers", "sendgrid", "--json"]).stdout)
    assert one["name"] == "sendgrid" and one["notes"]
    loaded = json.loads(CliRunner().invoke(app, ["plugins", "--json"], env={"MAILPIPE_BLOCK_PLUGINS": "yahoo"}).stdout)
    by_name = {p["name"]: p for p in loaded}
    assert by_name["plugins.sendgrid"]["source"] == "builtin" and "mailpipe_parse_webhook" in by_name["plugins.sendgrid"]["hooks"]
    assert by_name["plugins.yahoo"] == {"name": "plugins.yahoo", "loaded": False, "reason": "blocked by MAILPIPE_BLOCK_PLUGINS"}


def test_accounts_list_and_status_piped_or_json_keep_a_long_account_name_whole(
    write_config: Callable[..., Path], smtp_server: DevSMTPServer, tls_files: TLSFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    long_name = "eu-west-outbound-relay-" + "x" * 40  # 63 characters: the longest name allowed is 64
    monkeypatch.setenv(f"TEST_PW_{long_name.upper()}", "pw")
    accounts = account_toml(long_name, smtp_server.ports["starttls"], tls_files.ca_file) + account_toml(
        "gamma", smtp_server.ports["starttls"], tls_files.ca_file
    )
    path = write_config(accounts=accounts, routes="")
    for command in (["accounts", "list"], ["accounts", "status"]):
        table = CliRunner().invoke(app, [*command, "--config", str(path)])
        assert table.exit_code == 0, table.output
        assert long_name in table.stdout and "…" not in table.stdout, table.stdout
        rows = json.loads(CliRunner().invoke(app, [*command, "--json", "--config", str(path)]).stdout)
        assert [r["name"] for r in rows] == [long_name, "gamma"]
    listed = json.loads(CliRunner().invoke(app, ["accounts", "list", "--json", "--config", str(path)]).stdout)
    assert listed[1]["default"] is True and listed[1]["endpoint"].startswith("127.0.0.1:")
