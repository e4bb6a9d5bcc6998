"""`mailpipe accounts … --tenant T` and `mailpipe config apply` on a real database; a TOML without accounts when one is set."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from testbed import SMTP_USERS
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import load_config
from pipeline.errors import ConfigError
from pipeline.smtp.devsmtp import DevSMTPServer, TLSFiles

MASTER_KEY = base64.b64encode(b"k" * 32).decode()


def database_toml(pg_url: str, smtp_port: int, ca_file: str) -> str:
    return f"""
[database]
url = "{pg_url}"

[secrets]
master_keys = ["env:TEST_MASTER_KEY"]

[serve]
allow_hosts = ["127.0.0.1/32"]
allow_ports = [{smtp_port}]
trusted_ca_file = "{ca_file}"
"""


@pytest.fixture
def db_config(
    tmp_path: Path, pg_url: str, redis_url: str, smtp_server: DevSMTPServer, tls_files: TLSFiles, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A config with a database and no [[accounts]] or [default] at all."""
    monkeypatch.setenv("TEST_MASTER_KEY", MASTER_KEY)
    path = tmp_path / "db.toml"
    path.write_text(f'[broker]\nurl = "{redis_url}"\n' + database_toml(pg_url, smtp_server.ports["starttls"], tls_files.ca_file))
    return path


def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, list(args), input=input, env=env)


def test_accounts_of_a_tenant_from_the_cli(
    db_config: Path, smtp_server: DevSMTPServer, pg_engine: Engine, tmp_path: Path
) -> None:
    cfg = ["--config", str(db_config)]
    assert run("tenants", "create", "acme", *cfg).exit_code == 0
    secret = tmp_path / "pw"
    secret.write_text(SMTP_USERS["alpha"] + "\n")
    port = str(smtp_server.ports["starttls"])
    endpoint = ["--host", "127.0.0.1", "--port", port, "--security", "starttls", "--username", "alpha"]

    added = run("accounts", "add", "main", "--tenant", "acme", *endpoint, "--from-email", "sales@acme.example",
                "--password-file", str(secret), "--json", *cfg)  # fmt: skip
    assert added.exit_code == 0, added.output
    out = json.loads(added.stdout)
    assert out["tenant"] == "acme" and out["password_set"] is True and out["default"] is True
    assert out["verification"]["ok"] is True and [s["step"] for s in out["verification"]["steps"]][:2] == ["dns", "tcp"]
    assert SMTP_USERS["alpha"] not in added.output

    # a wrong password: the check fails, nothing is saved, the steps are shown
    wrong = run("accounts", "add", "bad", "--tenant", "acme", *endpoint, "--from-email", "b@acme.example",
                "--password-env", "WRONG_PW", "--json", *cfg, env={"WRONG_PW": "not-the-password"})  # fmt: skip
    assert wrong.exit_code == 2
    refused = json.loads(wrong.stdout)
    assert refused["field"] == "name" and refused["verification"]["ok"] is False
    assert "not-the-password" not in wrong.output

    # stdin as the password file; --no-verify saves without connecting
    second = run("accounts", "add", "backup", "--tenant", "acme", "--provider", "sendgrid", "--from-email", "b@acme.example",
                 "--password-file", "-", "--no-verify", *cfg, input="SG.stdin-secret-0123456789\n")  # fmt: skip
    assert second.exit_code == 0, second.output
    assert "SG.stdin-secret" not in second.output

    edited = run("accounts", "edit", "backup", "--tenant", "acme", "--from-name", "Acme Backup", "--json", *cfg)
    assert edited.exit_code == 0 and json.loads(edited.stdout)["from_name"] == "Acme Backup"
    assert json.loads(edited.stdout)["password_set"] is True  # kept
    assert run("accounts", "edit", "backup", "--tenant", "acme", *cfg).exit_code == 2  # nothing to change

    activated = run("accounts", "activate", "backup", "--tenant", "acme", "--json", *cfg)
    assert json.loads(activated.stdout)["default"] is True
    paused = run("accounts", "pause", "main", "--tenant", "acme", "--reason", "warming", "--json", *cfg)
    assert json.loads(paused.stdout)["status"] == "paused"
    assert json.loads(run("accounts", "resume", "main", "--tenant", "acme", "--json", *cfg).stdout)["status"] == "active"
    verified = run("accounts", "verify", "main", "--tenant", "acme", "--json", *cfg)
    assert verified.exit_code == 0 and json.loads(verified.stdout)["ok"] is True

    unknown = run("accounts", "remove", "nosuch", "--tenant", "acme", *cfg)
    assert unknown.exit_code == 1 and "no account 'nosuch'" in unknown.output
    assert run("accounts", "remove", "main", "--tenant", "acme", *cfg).exit_code == 0
    assert run("accounts", "pause", "main", "--tenant", "nosuch", *cfg).exit_code == 1

    with pg_engine.connect() as connection:
        names = connection.execute(text("SELECT name FROM smtp_accounts ORDER BY name")).scalars().all()
        actors = set(connection.execute(text("SELECT actor FROM audit_log")).scalars())
        dump = " ".join(str(r) for r in connection.execute(text("SELECT * FROM smtp_accounts")).all())
    assert names == ["backup"]
    assert all(a.startswith("cli:") for a in actors)
    assert "SG.stdin-secret" not in dump


def test_tenant_option_without_a_database_says_what_is_missing(config_path: Path) -> None:
    result = run("accounts", "pause", "alpha", "--tenant", "acme", "--config", str(config_path))
    assert result.exit_code == 2
    assert "no database" in result.output and "MAILPIPE_DATABASE_URL" in result.output


@pytest.fixture
def config_path(write_config: Callable[..., Path]) -> Path:
    return write_config()


def test_config_apply_upserts_the_files_accounts_idempotently(
    write_config: Callable[..., Path],
    pg_url: str,
    pg_engine: Engine,
    smtp_server: DevSMTPServer,
    tls_files: TLSFiles,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TEST_MASTER_KEY", MASTER_KEY)
    extra = database_toml(pg_url, smtp_server.ports["starttls"], tls_files.ca_file)
    path = write_config(extra=extra)
    first = run("config", "apply", "--json", "--config", str(path))
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert sorted(report["created"]) == ["alpha", "beta", "gamma"] and report["routes_replaced"] is True
    assert report["activated"] == "gamma"

    def audit_rows() -> list[tuple[str, str]]:
        with pg_engine.connect() as connection:
            return [tuple(r) for r in connection.execute(text("SELECT actor, action FROM audit_log ORDER BY id")).all()]

    logged = audit_rows()
    assert logged and {actor for actor, _ in logged} == {"config-file"}
    again = json.loads(run("config", "apply", "--json", "--config", str(path)).stdout)
    assert again["changed"] is False and sorted(again["unchanged"]) == ["alpha", "beta", "gamma"]
    assert audit_rows() == logged  # nothing written the second time

    with pg_engine.connect() as connection:
        rows = connection.execute(text("SELECT name, managed_by_file, password_set, secret FROM smtp_accounts")).all()
    assert {r.name for r in rows} == {"alpha", "beta", "gamma"} and all(r.managed_by_file and r.password_set for r in rows)
    assert not any(SMTP_USERS[r.name].encode() in bytes(r.secret) for r in rows)  # encrypted

    # the API (and the CLI) may not change them: they are the file's
    edit = run("accounts", "edit", "alpha", "--tenant", "default", "--from-name", "X", "--config", str(path))
    assert edit.exit_code == 1 and "config file" in edit.output

    # an account added through the registry survives; one dropped from the file goes; a changed password is rewritten
    added = run("accounts", "add", "extra", "--tenant", "default", "--provider", "sendgrid", "--from-email", "e@x.example",
                "--password-env", "PW", "--no-verify", "--config", str(path), env={"PW": "SG.extra-0123456789"})  # fmt: skip
    assert added.exit_code == 0, added.output
    monkeypatch.setenv("TEST_PW_ALPHA", "a-new-password-123")
    smaller = write_config(extra=extra, routes="", accounts=None)
    text_without_beta = smaller.read_text().split("[[accounts]]")
    kept = "[[accounts]]".join(part for part in text_without_beta if 'name = "beta"' not in part)
    smaller.write_text(kept)
    third = run("config", "apply", "--json", "--config", str(smaller))
    assert third.exit_code == 0, third.output
    changes = json.loads(third.stdout)
    assert changes["removed"] == ["beta"] and changes["updated"] == ["alpha"] and changes["routes_replaced"] is True
    with pg_engine.connect() as connection:
        names = set(connection.execute(text("SELECT name FROM smtp_accounts")).scalars())
        last = connection.execute(text("SELECT actor, after FROM audit_log WHERE action = 'account.update'")).one()
    assert names == {"alpha", "gamma", "extra"}
    assert last.actor == "config-file" and last.after["password"] == "changed"


def test_a_config_without_accounts_needs_a_database(tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAILPIPE_DATABASE_URL", raising=False)
    bare = tmp_path / "bare.toml"
    bare.write_text('[broker]\nurl = "redis://127.0.0.1:1/0"\n')
    with pytest.raises(ConfigError) as refused:
        load_config(bare)
    problems = " | ".join(refused.value.problems)
    assert "accounts: at least one [[accounts]]" in problems and "default: [default] account" in problems
    assert "MAILPIPE_DATABASE_URL" in problems

    with_db = tmp_path / "with-db.toml"
    with_db.write_text(bare.read_text() + f'[database]\nurl = "{pg_url}"\n[send]\nmessage_id_domain = "mail.acme.example"\n')
    config = load_config(with_db)
    assert config.accounts == [] and config.default is None
    assert config.message_id_domain() == "mail.acme.example"

    monkeypatch.setenv("MAILPIPE_DATABASE_URL", pg_url)
    from_env = load_config(bare)
    assert from_env.default is None and "." in from_env.message_id_domain()
    checked = run("config", "check", str(bare))
    assert checked.exit_code == 0 and "0 accounts" in checked.output
