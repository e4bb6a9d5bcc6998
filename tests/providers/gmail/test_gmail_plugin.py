"""Gmail: App Password hints, From rewritten to the login unless it is an alias, consumer vs Workspace limits."""

from __future__ import annotations

from email import message_from_bytes, policy
from typing import Any

from pipeline.config import resolve_account
from pipeline.plugin_host.hints import Step

BAD_CREDENTIALS = (
    "535-5.7.8 Username and Password not accepted. For more information, go to\n"
    "535 5.7.8  https://support.google.com/mail/?p=BadCredentials a1-20020a17.123 - gsmtp"
)
APP_PASSWORD_REQUIRED = (
    "534-5.7.9 Application-specific password required. For more information, go to\n"
    "534 5.7.9  https://support.google.com/mail/?p=InvalidSecondFactor b2-20020a17.45 - gsmtp"
)


def test_consumer_and_workspace_accounts_get_their_daily_limits(kit: Any) -> None:
    consumer = kit.account(provider="gmail", username="me@gmail.com", password="app-pw", from_email="me@gmail.com")
    workspace = kit.account(
        provider="gmail", username="me@acme.example", password="app-pw", from_email="me@acme.example", options={"workspace": True}
    )
    assert resolve_account(consumer, kit.preset(consumer)).limits.per_day == 500
    resolved = resolve_account(workspace, kit.preset(workspace))
    assert (resolved.host, resolved.port, resolved.limits.per_day) == ("smtp.gmail.com", 587, 2000)


def test_from_is_rewritten_to_the_login_and_the_original_kept_as_reply_to(kit: Any) -> None:
    account = kit.account(provider="gmail", username="me@gmail.com", from_email="sales@acme.example", from_name="Acme Sales")
    routed = kit.prepared(account)
    assert routed.from_addr == "me@gmail.com"
    assert routed.reply_to == "sales@acme.example"
    assert routed.envelope_from == "me@gmail.com"
    assert routed.from_name == "Acme Sales"
    on_wire = message_from_bytes(kit.wire(routed), policy=policy.default)
    assert "me@gmail.com" in str(on_wire["From"]) and "sales@acme.example" in str(on_wire["Reply-To"])


def test_a_verified_alias_is_sent_as_is(kit: Any) -> None:
    account = kit.account(
        provider="gmail", username="me@gmail.com", from_email="Sales@Acme.example", options={"aliases": ["sales@acme.example"]}
    )
    routed = kit.prepared(account)
    assert routed.from_addr == account.from_email
    assert routed.reply_to is None


def test_an_existing_reply_to_is_not_replaced(kit: Any) -> None:
    account = kit.account(
        provider="gmail", username="me@gmail.com", from_email="sales@acme.example", reply_to="replies@acme.example"
    )
    assert kit.prepared(account).reply_to == "replies@acme.example"


def test_the_rewrite_can_be_turned_off(kit: Any) -> None:
    account = kit.account(
        provider="gmail", username="me@gmail.com", from_email="sales@acme.example", options={"rewrite_from": False}
    )
    assert kit.prepared(account).from_addr == "sales@acme.example"


def test_a_refused_password_gets_the_app_password_hint(kit: Any) -> None:
    server = kit.server(auth_reply=BAD_CREDENTIALS)
    report = kit.verify_on(server, provider="gmail", password="my-normal-password")
    failure = report.failure
    assert failure is not None and failure.step == Step.AUTH
    assert failure.reply is not None and failure.reply.startswith("535 5.7.8 Username and Password not accepted")
    assert "BadCredentials" in failure.reply
    assert "App Password" in report.hints[0] and "2-Step Verification" in report.hints[0]


def test_application_specific_password_required_gets_the_same_hint(kit: Any) -> None:
    hints = kit.hints(kit.account(provider="gmail", username="me@gmail.com"), f"auth: {APP_PASSWORD_REQUIRED}")
    assert any("App Password" in hint for hint in hints)


def test_a_username_that_is_not_an_address_is_pointed_out(kit: Any) -> None:
    hints = kit.hints(kit.account(provider="gmail", username="me"), f"auth: {BAD_CREDENTIALS}")
    assert any("full address" in hint for hint in hints)
