"""Yahoo Mail: implicit TLS on 465, app passwords, From must be the mailbox."""

from __future__ import annotations

from typing import Any

from pipeline.config import resolve_account
from pipeline.plugin_host.hints import Step
from pipeline.plugin_host.presets import Security

BAD_LOGIN = "535 5.7.0 (#AUTH005) Too many bad auth attempts."


def test_the_preset_uses_implicit_tls_on_465(kit: Any) -> None:
    account = kit.account(provider="yahoo", username="me@yahoo.com", password="app-pw", from_email="me@yahoo.com")
    resolved = resolve_account(account, kit.preset(account))
    assert (resolved.host, resolved.port, resolved.security) == ("smtp.mail.yahoo.com", 465, Security.TLS)


def test_from_is_rewritten_to_the_yahoo_address(kit: Any) -> None:
    routed = kit.prepared(kit.account(provider="yahoo", username="me@yahoo.com", from_email="sales@acme.example"))
    assert (routed.from_addr, routed.reply_to) == ("me@yahoo.com", "sales@acme.example")


def test_a_refused_login_over_implicit_tls_gets_the_app_password_hint(kit: Any) -> None:
    server = kit.server(auth_reply=BAD_LOGIN, mode="tls")
    report = kit.verify_on(server, mode="tls", provider="yahoo", password="normal-password")
    assert [row.step for row in report.steps][:4] == [Step.DNS, Step.TCP, Step.TLS, Step.BANNER]
    assert report.failure is not None and report.failure.reply == BAD_LOGIN
    assert any("app password" in hint for hint in report.hints)
