"""Microsoft 365: 30 messages a minute, SMTP AUTH disabled (5.7.139), Send As refusals."""

from __future__ import annotations

from typing import Any

from pipeline.config import resolve_account
from pipeline.plugin_host.hints import Step

AUTH_DISABLED = (
    "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. "
    "Visit https://aka.ms/smtp_auth_disabled for more information. [AM0PR10CA0001.EURPRD10.PROD.OUTLOOK.COM]"
)
SEND_AS_DENIED = (
    "554 5.2.252 SendAsDenied; me@acme.example not allowed to send as sales@acme.example; "
    "STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied"
)


def test_the_preset_limits_to_30_a_minute_and_10000_a_day(kit: Any) -> None:
    account = kit.account(provider="outlook", username="me@acme.example", password="pw")
    resolved = resolve_account(account, kit.preset(account))
    assert (resolved.host, resolved.port) == ("smtp.office365.com", 587)
    assert (resolved.limits.per_minute, resolved.limits.per_day) == (30, 10_000)


def test_smtp_auth_disabled_explains_how_to_enable_it(kit: Any) -> None:
    server = kit.server(auth_reply=AUTH_DISABLED)
    report = kit.verify_on(server, provider="outlook", password="pw")
    assert report.failure is not None and report.failure.reply == AUTH_DISABLED
    assert "Authenticated SMTP" in report.hints[0]


def test_send_as_denied_explains_send_as_rights(kit: Any) -> None:
    server = kit.server(data_reply=SEND_AS_DENIED)
    report = kit.verify_on(
        server, provider="outlook", send_test="lead@example.com", options={"rewrite_from": False}, from_email="sales@acme.example"
    )
    assert report.failure is not None and report.failure.step == Step.SEND
    assert any("Send As rights" in hint for hint in report.hints)


def test_from_is_rewritten_unless_the_mailbox_may_send_as_it(kit: Any) -> None:
    account = kit.account(provider="outlook", username="me@acme.example", from_email="sales@acme.example")
    assert kit.prepared(account).from_addr == "me@acme.example"
    shared = kit.account(
        provider="outlook",
        username="me@acme.example",
        from_email="sales@acme.example",
        options={"aliases": ["sales@acme.example"]},
    )
    assert kit.prepared(shared).from_addr == "sales@acme.example"
