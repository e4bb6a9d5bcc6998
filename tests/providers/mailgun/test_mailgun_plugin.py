"""Mailgun: US/EU hosts by region, X-Mailgun-Variables, SMTP-credential and region hints."""

from __future__ import annotations

import json
from email import message_from_bytes, policy
from typing import Any

from pipeline.config import resolve_account
from pipeline.plugin_host.hints import Step

BAD_LOGIN = "535 5.7.0 Mailgun is not loving your login or password"
SANDBOX = (
    "554 Sandbox subdomains are for test purposes only. Please add your own domain or add the address to "
    "authorized recipients in Account Settings."
)


def test_the_region_picks_the_us_or_eu_host(kit: Any) -> None:
    us = kit.account(provider="mailgun", username="postmaster@mg.acme.example", password="pw")
    eu = kit.account(provider="mailgun", region="eu", username="postmaster@mg.acme.example", password="pw")
    assert resolve_account(us, kit.preset(us)).host == "smtp.mailgun.org"
    assert resolve_account(eu, kit.preset(eu)).host == "smtp.eu.mailgun.org"
    assert resolve_account(eu, kit.preset(eu)).port == 587


def test_variables_carry_event_id_and_tenant(kit: Any) -> None:
    routed = kit.prepared(kit.account(provider="mailgun"), event_id="lead-9", tenant="acme")
    assert json.loads(routed.message.headers["X-Mailgun-Variables"]) == {"event_id": "lead-9", "tenant": "acme"}
    on_wire = message_from_bytes(kit.wire(routed), policy=policy.default)
    assert json.loads(str(on_wire["X-Mailgun-Variables"]))["tenant"] == "acme"


def test_variables_from_a_template_are_kept(kit: Any) -> None:
    account = kit.account(provider="mailgun")
    routed = kit.routed(account)
    routed.message.headers["X-Mailgun-Variables"] = '{"list": "denmark"}'
    kit.prepared(account, routed)
    assert json.loads(routed.message.headers["X-Mailgun-Variables"])["list"] == "denmark"


def test_a_refused_login_points_at_smtp_credentials_and_the_eu_region(kit: Any) -> None:
    server = kit.server(auth_reply=BAD_LOGIN)
    report = kit.verify_on(server, provider="mailgun", password="api-key-by-mistake")
    assert report.failure is not None and report.failure.reply == BAD_LOGIN
    assert any("SMTP credentials" in hint for hint in report.hints)
    # the host is overridden here, so the "set region = eu" hint (for the preset's US host) is not given
    account = kit.account(provider="mailgun")
    assert any('region = "eu"' in hint for hint in kit.hints(account, f"auth: {BAD_LOGIN}"))
    eu = kit.account(provider="mailgun", region="eu")
    assert not any('region = "eu"' in hint for hint in kit.hints(eu, f"auth: {BAD_LOGIN}"))


def test_a_sandbox_domain_refusal_explains_authorised_recipients(kit: Any) -> None:
    server = kit.server(data_reply=SANDBOX)
    report = kit.verify_on(server, provider="mailgun", send_test="lead@example.com")
    assert report.failure is not None and report.failure.step == Step.SEND
    assert any("Authorized Recipients" in hint for hint in report.hints)
