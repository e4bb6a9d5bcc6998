"""Zoho Mail: host per data centre, From must be the mailbox or an alias, data-centre hints."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.config import resolve_account
from pipeline.plugin_host.hints import Step

BAD_LOGIN = "535 Authentication Failed"
NOT_ALLOWED = "553 Sender is not allowed to relay emails"


@pytest.mark.parametrize(
    ("region", "host"),
    [
        (None, "smtp.zoho.com"),
        ("eu", "smtp.zoho.eu"),
        ("in", "smtp.zoho.in"),
        ("au", "smtp.zoho.com.au"),
        ("ca", "smtp.zohocloud.ca"),
    ],
)
def test_the_region_picks_the_data_centre_host(kit: Any, region: str | None, host: str) -> None:
    account = kit.account(provider="zoho", region=region, username="me@acme.example", password="pw")
    assert resolve_account(account, kit.preset(account)).host == host


def test_from_must_be_the_mailbox_or_an_alias(kit: Any) -> None:
    account = kit.account(provider="zoho", username="me@acme.example", from_email="news@acme.example")
    routed = kit.prepared(account)
    assert (routed.from_addr, routed.reply_to) == ("me@acme.example", "news@acme.example")
    alias = kit.account(
        provider="zoho", username="me@acme.example", from_email="news@acme.example", options={"aliases": "news@acme.example"}
    )
    assert kit.prepared(alias).from_addr == "news@acme.example"


def test_a_refused_login_names_the_data_centre_and_app_passwords(kit: Any) -> None:
    server = kit.server(auth_reply=BAD_LOGIN)
    report = kit.verify_on(server, provider="zoho", password="pw")
    assert report.failure is not None and report.failure.reply == BAD_LOGIN
    assert any("data centre" in hint for hint in report.hints)
    assert any("application-specific password" in hint for hint in report.hints)


def test_a_relay_refusal_explains_aliases(kit: Any) -> None:
    server = kit.server(data_reply=NOT_ALLOWED)
    report = kit.verify_on(server, provider="zoho", send_test="lead@example.com")
    assert report.failure is not None and report.failure.step == Step.SEND
    assert any("options.aliases" in hint for hint in report.hints)
