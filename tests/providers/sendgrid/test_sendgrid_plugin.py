"""SendGrid: apikey username, X-SMTPAPI unique_args, and the failures SendGrid customers meet."""

from __future__ import annotations

import json
from email import message_from_bytes, policy
from typing import Any

from pipeline.config import resolve_account
from pipeline.plugin_host.hints import Step
from pipeline.plugin_host.presets import Security

BAD_LOGIN = "535 Authentication failed: Bad username / password"
UNVERIFIED_SENDER = (
    "550 The from address does not match a verified Sender Identity. Mail cannot be sent until this error is "
    "resolved. Visit https://sendgrid.com/docs/for-developers/sending-email/sender-identity/ to see the Sender "
    "Identity requirements"
)


def test_the_preset_logs_in_as_apikey_on_smtp_sendgrid_net(kit: Any) -> None:
    account = kit.account(provider="sendgrid", password="SG.secret")
    resolved = resolve_account(account, kit.preset(account))
    assert (resolved.host, resolved.port, resolved.security) == ("smtp.sendgrid.net", 587, Security.STARTTLS)
    assert resolved.username == "apikey"
    assert resolved.limits.per_second == 10


def test_unique_args_carry_event_id_and_tenant_so_webhooks_map_back(kit: Any) -> None:
    account = kit.account(provider="sendgrid")
    routed = kit.prepared(account, event_id="lead-42", tenant="acme")
    assert json.loads(routed.message.headers["X-SMTPAPI"]) == {"unique_args": {"event_id": "lead-42", "tenant": "acme"}}
    on_wire = message_from_bytes(kit.wire(routed), policy=policy.default)
    assert json.loads(str(on_wire["X-SMTPAPI"]))["unique_args"]["event_id"] == "lead-42"


def test_x_smtpapi_settings_from_a_template_are_kept_and_merged(kit: Any) -> None:
    account = kit.account(provider="sendgrid")
    routed = kit.routed(account, event_id="lead-7")
    routed.message.headers["x-smtpapi"] = '{"category": ["leads"], "unique_args": {"list": "denmark"}}'
    kit.prepared(account, routed)
    assert list(routed.message.headers) == ["X-SMTPAPI"]
    data = json.loads(routed.message.headers["X-SMTPAPI"])
    assert data["category"] == ["leads"]
    assert data["unique_args"] == {"list": "denmark", "event_id": "lead-7", "tenant": "default"}


def test_a_username_other_than_apikey_is_refused_with_the_apikey_hint(kit: Any) -> None:
    server = kit.server(auth_reply=BAD_LOGIN)
    report = kit.verify_on(server, provider="sendgrid", username="me@acme.example", password="SG.wrong")
    failure = report.failure
    assert failure is not None and failure.step == Step.AUTH
    assert failure.reply == BAD_LOGIN
    assert any('literal string "apikey", not me@acme.example' in hint for hint in report.hints)
    assert any("Mail Send permission" in hint for hint in report.hints)


def test_an_unverified_sender_gets_the_sender_identity_hint(kit: Any) -> None:
    server = kit.server(data_reply=UNVERIFIED_SENDER)
    report = kit.verify_on(server, provider="sendgrid", send_test="lead@example.com")
    failure = report.failure
    assert failure is not None and failure.step == Step.SEND
    assert failure.reply == UNVERIFIED_SENDER
    assert any("Sender Authentication" in hint for hint in report.hints)


def test_a_blocked_port_suggests_sendgrids_other_ports(kit: Any) -> None:
    hints = kit.hints(kit.account(provider="sendgrid"), "tcp: connection refused")
    assert any("2525" in hint for hint in hints)
