"""`accounts verify` against the real aiosmtpd dev server: success, and each way a connection fails."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from typer.testing import CliRunner

from pipeline.cli import accounts
from pipeline.config import AccountConfig
from pipeline.limits.account_state import AccountState, Health
from pipeline.plugin_host.hints import Step
from pipeline.plugin_host.manager import LoadOptions, MailpipePluginManager, build_plugin_manager
from pipeline.smtp.devsmtp import DevSMTPServer, TLSFiles
from pipeline.smtp.netutil import free_port
from pipeline.smtp.verify import Report, verify

USER, PASSWORD = "alice@gmail.com", "app-password-1"
GMAIL_535 = (
    "535-5.7.8 Username and Password not accepted. For more information, go to\n"
    "535 5.7.8  https://support.google.com/mail/?p=BadCredentials z9-20020a05.77 - gsmtp"
)


@pytest.fixture(scope="module")
def pm() -> MailpipePluginManager:
    return build_plugin_manager(LoadOptions(load=frozenset()))


@pytest.fixture
def server(tls_files: TLSFiles) -> Iterator[DevSMTPServer]:
    """STARTTLS, implicit TLS and plaintext listeners; a wrong password gets Gmail's exact reply."""
    dev = DevSMTPServer(tls_files=tls_files, users={USER: PASSWORD}, auth_reply=GMAIL_535)
    for mode in ("starttls", "tls", "none"):
        dev.start(mode)
    yield dev
    dev.stop()


def account(server: DevSMTPServer, tls_files: TLSFiles, *, mode: str = "starttls", **fields: Any) -> AccountConfig:
    values: dict[str, Any] = {
        "name": "gmail-a",
        "provider": "gmail",
        "host": "127.0.0.1",
        "port": server.ports[mode],
        "security": "tls" if mode == "tls" else "starttls",
        "username": USER,
        "password": PASSWORD,
        "from_email": USER,
        "ca_file": tls_files.ca_file,
        "local_hostname": "test.localhost",
    }
    values.update(fields)
    return AccountConfig.model_validate(values)


def steps(report: Report) -> list[tuple[str, bool]]:
    return [(str(row.step), row.ok) for row in report.steps]


def test_a_good_starttls_account_passes_every_step_with_its_time(
    server: DevSMTPServer, tls_files: TLSFiles, pm: MailpipePluginManager
) -> None:
    report = verify(account(server, tls_files), pm=pm)
    assert report.ok, report
    assert steps(report) == [
        ("dns", True),
        ("tcp", True),
        ("banner", True),
        ("ehlo", True),
        ("starttls", True),
        ("ehlo", True),
        ("auth", True),
    ]
    assert all(row.elapsed is not None and row.elapsed >= 0 for row in report.steps)
    assert "TLSv1" in report.steps[4].detail and "certificate verified" in report.steps[4].detail
    assert report.steps[6].detail.startswith("235 ")
    assert report.hints == []


def test_a_good_implicit_tls_account_passes_and_can_send_a_test_message(
    server: DevSMTPServer, tls_files: TLSFiles, pm: MailpipePluginManager
) -> None:
    report = verify(account(server, tls_files, mode="tls"), pm=pm, send_test="lead@example.com")
    assert report.ok, report
    assert [s for s, _ in steps(report)] == ["dns", "tcp", "tls", "banner", "ehlo", "auth", "send"]
    received = server.wait_for(1)
    assert received[0].rcpt_to == ["lead@example.com"] and received[0].auth_user == USER
    assert received[0].header("Subject") == "mailpipe test message"


def test_a_wrong_password_shows_the_providers_exact_535_and_the_app_password_hint(
    server: DevSMTPServer, tls_files: TLSFiles, pm: MailpipePluginManager
) -> None:
    report = verify(account(server, tls_files, password="my-normal-password"), pm=pm)
    failure = report.failure
    assert failure is not None and failure.step == Step.AUTH
    assert failure.reply == (
        "535 5.7.8 Username and Password not accepted. For more information, go to\n"
        "5.7.8  https://support.google.com/mail/?p=BadCredentials z9-20020a05.77 - gsmtp"
    )
    assert "App Password" in report.hints[0]
    assert steps(report)[-1] == ("auth", False)


def test_a_plaintext_port_when_starttls_is_expected_says_starttls_is_not_offered(
    server: DevSMTPServer, tls_files: TLSFiles, pm: MailpipePluginManager
) -> None:
    report = verify(account(server, tls_files, mode="none"), pm=pm)
    failure = report.failure
    assert failure is not None and failure.step == Step.STARTTLS
    assert "does not offer STARTTLS" in failure.detail
    assert any('does not offer STARTTLS. Port 465 needs security = "tls"' in hint for hint in report.hints)


def test_implicit_tls_against_a_starttls_port_says_the_port_speaks_plain_text(
    server: DevSMTPServer, tls_files: TLSFiles, pm: MailpipePluginManager
) -> None:
    plain_port = account(server, tls_files, security="tls")  # the STARTTLS listener, told to expect TLS
    report = verify(plain_port, pm=pm)
    failure = report.failure
    assert failure is not None and failure.step == Step.TLS
    assert failure.detail.startswith("TLS handshake failed")
    assert any("answered in plain text, not TLS" in hint for hint in report.hints)


def test_starttls_against_an_implicit_tls_port_times_out_waiting_for_the_greeting(
    server: DevSMTPServer, tls_files: TLSFiles, pm: MailpipePluginManager
) -> None:
    tls_port = account(server, tls_files, security="starttls", port=server.ports["tls"])
    report = verify(tls_port, pm=pm, timeout=1)
    failure = report.failure
    assert failure is not None and failure.step == Step.BANNER
    assert "no greeting within 1s" in failure.detail
    assert any('waits for the TLS handshake first. Set security = "tls"' in hint for hint in report.hints)


def test_a_server_that_requires_tls_refuses_login_and_mail_in_plain_text(
    server: DevSMTPServer, tls_files: TLSFiles, pm: MailpipePluginManager
) -> None:
    plain = account(server, tls_files, security="none", allow_plaintext_auth=True)
    report = verify(plain, pm=pm)
    assert report.failure is not None and report.failure.step == Step.AUTH
    assert "offers no AUTH" in report.failure.detail
    assert any("only after STARTTLS" in hint for hint in report.hints)

    anonymous = account(server, tls_files, security="none", username=None, password=None)
    report = verify(anonymous, pm=pm, send_test="lead@example.com")
    failure = report.failure
    assert failure is not None and failure.step == Step.SEND
    assert failure.reply is not None and failure.reply.startswith("530")
    assert any("requires TLS before login" in hint for hint in report.hints)


def test_plaintext_auth_is_refused_by_mailpipe_itself_unless_allowed(
    server: DevSMTPServer, tls_files: TLSFiles, pm: MailpipePluginManager
) -> None:
    report = verify(account(server, tls_files, mode="none", security="none"), pm=pm)
    assert report.failure is not None and "unencrypted" in report.failure.detail
    assert any("allow_plaintext_auth = true" in hint for hint in report.hints)


def test_an_untrusted_certificate_fails_at_starttls(
    server: DevSMTPServer, tls_files: TLSFiles, pm: MailpipePluginManager
) -> None:
    report = verify(account(server, tls_files, ca_file=None), pm=pm)
    failure = report.failure
    assert failure is not None and failure.step == Step.STARTTLS
    assert failure.detail.startswith("certificate verify failed")
    assert any("ca_file" in hint for hint in report.hints)


def test_connection_refused(tls_files: TLSFiles, pm: MailpipePluginManager) -> None:
    closed = AccountConfig(
        name="x", provider="smtp", host="127.0.0.1", port=free_port(), password="pw", username="u", from_email="a@acme.example"
    )
    report = verify(closed, pm=pm)
    failure = report.failure
    assert failure is not None and failure.step == Step.TCP
    assert "connection refused" in failure.detail
    assert any("Nothing accepts connections" in hint for hint in report.hints)


def test_a_host_that_does_not_resolve(pm: MailpipePluginManager) -> None:
    nowhere = AccountConfig(name="x", provider="smtp", host="no-such-host.invalid", from_email="a@acme.example")
    report = verify(nowhere, pm=pm, timeout=5)
    assert report.failure is not None and report.failure.step == Step.DNS
    assert any("does not resolve" in hint for hint in report.hints)


# ---- the CLI


def write_config(tmp_path: Path, server: DevSMTPServer, tls_files: TLSFiles, redis_url: str | None = None) -> Path:
    url = redis_url or f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there: health is unknown
    path = tmp_path / "mailpipe.toml"
    path.write_text(f"""
[broker]
url = "{url}"

[[accounts]]
name = "gmail-a"
provider = "gmail"
host = "127.0.0.1"
port = {server.ports["starttls"]}
username = "{USER}"
password = "env:TEST_GMAIL_PW"
from_email = "{USER}"
ca_file = "{tls_files.ca_file}"
local_hostname = "test.localhost"

[[accounts]]
name = "sg-main"
provider = "sendgrid"
password = "env:TEST_GMAIL_PW"
from_email = "hello@acme.example"

[default]
account = "sg-main"
""")
    return path


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setattr(accounts.console, "width", 200)
    monkeypatch.setenv("TEST_GMAIL_PW", PASSWORD)
    for name in ("MAILPIPE_PLUGINS", "MAILPIPE_LOAD_PLUGINS", "MAILPIPE_BLOCK_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    return CliRunner()


def test_accounts_verify_exits_0_on_success_and_1_with_reply_and_hints_on_failure(
    cli: CliRunner, server: DevSMTPServer, tls_files: TLSFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, server, tls_files)
    ok = cli.invoke(accounts.app, ["verify", "gmail-a", "--config", str(config)])
    assert ok.exit_code == 0, ok.output
    assert "ready to send" in ok.output and "235" in ok.output

    monkeypatch.setenv("TEST_GMAIL_PW", "wrong")
    bad = cli.invoke(accounts.app, ["verify", "gmail-a", "--config", str(config)])
    assert bad.exit_code == 1, bad.output
    assert "server replied: 535 5.7.8 Username and Password not accepted" in bad.output
    assert "hint: Gmail refused the password" in bad.output
    assert PASSWORD not in bad.output and "wrong" not in bad.output.replace("wrong version", "")


def test_accounts_verify_names_the_known_accounts_for_an_unknown_one(
    cli: CliRunner, server: DevSMTPServer, tls_files: TLSFiles, tmp_path: Path
) -> None:
    result = cli.invoke(accounts.app, ["verify", "nope", "--config", str(write_config(tmp_path, server, tls_files))])
    assert result.exit_code == 2
    assert "known: gmail-a, sg-main" in result.output


def test_accounts_list_shows_endpoints_and_default_and_unknown_health_without_redis(
    cli: CliRunner, server: DevSMTPServer, tls_files: TLSFiles, tmp_path: Path
) -> None:
    result = cli.invoke(accounts.app, ["list", "--config", str(write_config(tmp_path, server, tls_files))])
    assert result.exit_code == 0, result.output
    assert "smtp.sendgrid.net:587 (starttls)" in result.output
    assert f"127.0.0.1:{server.ports['starttls']} (starttls)" in result.output
    assert result.output.count("unknown") == 2
    assert PASSWORD not in result.output


def test_accounts_list_reads_health_from_redis(
    cli: CliRunner, server: DevSMTPServer, tls_files: TLSFiles, tmp_path: Path, redis_url: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    AccountState(client).pause("gmail-a", "535 from provider", Health.AUTH_FAILED)
    client.close()
    result = cli.invoke(accounts.app, ["list", "--config", str(write_config(tmp_path, server, tls_files, redis_url))])
    assert result.exit_code == 0, result.output
    assert "paused (535 from provider)" in result.output
    assert "│ up" in result.output
