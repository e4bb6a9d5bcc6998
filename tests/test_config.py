"""Config loading: every problem named with file and line; secrets by reference, never shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import load_config, parse_config
from pipeline.errors import ConfigError

GOOD = """
[[accounts]]
name = "main"
host = "smtp.example.com"
password = "env:MAILPIPE_TEST_SECRET"
from_email = "hello@example.com"

[[routes]]
match = { list = "dk" }
accounts = ["main"]

[default]
account = "main"
"""

BAD = """
[[accounts]]
name = "main"
host = "smtp.example.com"
from_email = "hello@example.com"

[[accounts]]
name = "second"
port = 70000
from_email = "not-an-address"

[[routes]]
match = { list = "dk" }
accounts = ["nope"]

[default]
account = "ghost"
"""


def test_a_valid_file_loads_with_the_secret_resolved_but_hidden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILPIPE_TEST_SECRET", "hunter2-very-secret")
    path = tmp_path / "mailpipe.toml"
    path.write_text(GOOD)
    config = load_config(path)
    secret = config.accounts[0].password
    assert secret is not None and secret.resolve().get_secret_value() == "hunter2-very-secret"
    assert "hunter2" not in repr(config) and "hunter2" not in str(secret) and "hunter2" not in config.model_dump_json()


def test_every_problem_is_reported_with_its_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(BAD)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    problems = caught.value.problems
    assert f"{path}:9: accounts[1].port: Input should be less than or equal to 65535" in problems
    assert any(p.startswith(f"{path}:10: accounts[1].from_email: invalid email address") for p in problems)
    assert f"{path}:14: routes[0].accounts: unknown account 'nope'" in problems
    assert f"{path}:17: default.account: unknown account 'ghost'" in problems


def test_a_missing_env_secret_is_reported_by_name_without_a_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAILPIPE_TEST_SECRET", raising=False)
    with pytest.raises(ConfigError, match=r"accounts\[0\].password: secret env:MAILPIPE_TEST_SECRET is not set"):
        parse_config(GOOD, tmp_path / "x.toml")


def test_config_check_exits_non_zero_and_lists_problems(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(BAD)
    result = CliRunner().invoke(app, ["config", "check", str(path)])
    assert result.exit_code == 2
    assert "unknown account 'nope'" in result.output and "65535" in result.output


def test_config_check_accepts_a_valid_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILPIPE_TEST_SECRET", "x")
    path = tmp_path / "good.toml"
    path.write_text(GOOD)
    result = CliRunner().invoke(app, ["config", "check", str(path)])
    assert result.exit_code == 0, result.output
    assert "1 accounts, 1 routes" in result.output


def test_an_unparseable_file_names_the_toml_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"x\.toml"):
        parse_config("[[accounts]\nname=", tmp_path / "x.toml")
