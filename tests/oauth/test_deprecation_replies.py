"""Auth-deprecation replies: classified as account signals, explained by hints, and presets advertising OAuth."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from testbed import account_toml

from pipeline.config import AccountConfig, load_config
from pipeline.context import build_context
from pipeline.models import (
    AccountSignal,
    LeadEvent,
    RenderedMessage,
    RoutedMessage,
    SendReply,
    SendResult,
    TransportError,
)
from pipeline.plugin_host.manager import get_plugin_manager
from pipeline.smtp.devsmtp import DevSMTPServer, TLSFiles
from pipeline.smtp.verify import connection_hints
from pipeline.stages.classify import apply_signal, decide

OUTLOOK = AccountConfig(name="o", provider="outlook", username="a@m.example", password="x", from_email="a@m.example")
GMAIL = AccountConfig(name="g", provider="gmail", username="a@gmail.com", password="x", from_email="a@gmail.com")


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (535, "5.7.139 Authentication unsuccessful, basic authentication is disabled. [AM0PR02CA0001.eurprd02.prod]"),
        (550, "5.7.30 Basic authentication is not supported for Client Submission."),
    ],
)
def test_basic_auth_disabled_pauses_the_account_with_its_own_reason_and_says_switch_to_oauth(code: int, text: str) -> None:
    pm = get_plugin_manager()
    verdict = pm.hook.mailpipe_classify_reply(account=OUTLOOK, reply=SendReply(account="o", code=code, text=text))
    hints = connection_hints(pm, OUTLOOK, f"auth: {code} {text}")

    assert verdict.account_signal == AccountSignal.AUTH_FAILED and verdict.reason == "basic_auth_disabled"
    assert "switch this mailbox to OAuth" in hints[0]


def test_gmail_application_specific_password_required_gets_the_app_password_hint() -> None:
    hints = connection_hints(get_plugin_manager(), GMAIL, "auth: 534-5.7.9 Application-specific password required.")
    assert "App Password" in hints[0] and "534 5.7.9" in hints[0]


def test_gmail_username_and_password_not_accepted_gets_the_two_step_verification_hint() -> None:
    hints = connection_hints(get_plugin_manager(), GMAIL, "auth: 535-5.7.8 Username and Password not accepted.")
    assert "2-Step Verification is turned on" in hints[0]


def test_a_revoked_grant_in_accounts_verify_says_the_owner_must_connect_it_again() -> None:
    account = AccountConfig.model_validate(
        {
            "name": "g",
            "provider": "gmail",
            "from_email": "a@gmail.com",
            "auth_method": "XOAUTH2",
            "oauth": {"provider": "google", "client_id": "c", "refresh_token": "r"},
        }
    )
    error = "auth: oauth: the token endpoint refused the grant: invalid_grant: the mailbox owner must connect it again"
    hints = connection_hints(get_plugin_manager(), account, error)
    assert any("the mailbox owner must connect it again" in h for h in hints)


def test_gmail_and_outlook_presets_advertise_xoauth2_and_their_scopes() -> None:
    presets = {p.name: p for batch in get_plugin_manager().hook.mailpipe_provider_presets() for p in batch}
    for name in ("gmail", "gmail+workspace"):
        assert "XOAUTH2" in presets[name].auth_methods and presets[name].oauth_scopes == ("https://mail.google.com/",)
    assert "XOAUTH2" in presets["outlook"].auth_methods
    assert presets["outlook"].oauth_scopes == ("https://outlook.office.com/SMTP.Send", "offline_access")


def test_an_xoauth2_account_without_a_grant_is_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match="oauth"):
        AccountConfig.model_validate({"name": "g", "from_email": "a@gmail.com", "auth_method": "xoauth2"})
    with pytest.raises(ValueError, match="token_url"):
        AccountConfig.model_validate(
            {
                "name": "g",
                "from_email": "a@x.example",
                "auth_method": "xoauth2",
                "oauth": {"provider": "generic", "client_id": "c", "refresh_token": "r"},
            }
        )


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (535, "5.7.139 Authentication unsuccessful, basic authentication is disabled."),
        (550, "5.7.30 Basic authentication is not supported for Client Submission."),
    ],
)
def test_basic_auth_disabled_pauses_a_sending_account_with_reason_basic_auth_disabled(
    code: int, text: str, write_config: Callable[..., Path], smtp_server: DevSMTPServer, tls_files: TLSFiles
) -> None:
    port = smtp_server.ports["starttls"]
    accounts = account_toml("alpha", port, tls_files.ca_file, extra='provider = "outlook"') + "".join(
        account_toml(n, port, tls_files.ca_file) for n in ("beta", "gamma")
    )
    ctx = build_context(load_config(write_config(accounts=accounts)))
    event = LeadEvent.model_validate({"event_id": "b1", "to": "lead@receiver.example", "subject": "s", "text": "t"})
    routed = RoutedMessage(
        message=RenderedMessage(event=event, subject="s", text="t", message_id="<b1@x>"),
        account="alpha",
        route="r",
        from_addr="alpha@sender.example",
        envelope_from="alpha@sender.example",
        first_attempt_at=time.time(),
    )
    reply = SendReply(account="alpha", code=code, enhanced=text.split()[0], text=text, error=TransportError.AUTH)
    result = SendResult(routed=routed, reply=reply)
    decision = decide(result, ctx)
    apply_signal(result, decision, ctx)
    state = ctx.accounts_state.health("alpha")
    assert decision.transition.state == "rerouted" and decision.verdict.reason == "basic_auth_disabled"
    assert state["health"] == "auth_failed" and state["reason"].startswith("basic_auth_disabled: ")
