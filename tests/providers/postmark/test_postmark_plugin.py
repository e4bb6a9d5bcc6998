"""Postmark: server token login, message stream and Metadata headers, sender-signature hints."""

from __future__ import annotations

from typing import Any

from pipeline.config import resolve_account
from pipeline.plugin_host.hints import Step

BAD_TOKEN = "535 5.7.0 Unauthorized: Invalid token - please check your SMTP credentials"
NO_SIGNATURE = (
    "550 5.7.1 The 'From' address you supplied (sales@acme.example) is not a Sender Signature on your "
    "account. Please add and confirm this address in order to be able to use it in the 'From' field."
)


def test_the_preset_uses_starttls_on_587(kit: Any) -> None:
    account = kit.account(provider="postmark", username="token", password="token")
    resolved = resolve_account(account, kit.preset(account))
    assert (resolved.host, resolved.port, str(resolved.security)) == ("smtp.postmarkapp.com", 587, "starttls")


def test_stream_metadata_and_tag_headers_are_added(kit: Any) -> None:
    account = kit.account(provider="postmark", options={"message_stream": "broadcast"})
    routed = kit.prepared(account, event_id="lead-5", tenant="acme", campaign="spring")
    headers = routed.message.headers
    assert headers["X-PM-Message-Stream"] == "broadcast"
    assert headers["X-PM-Metadata-event_id"] == "lead-5"
    assert headers["X-PM-Metadata-tenant"] == "acme"
    assert headers["X-PM-Tag"] == "spring"


def test_metadata_headers_reach_the_wire(kit: Any) -> None:
    routed = kit.prepared(kit.account(provider="postmark"), event_id="lead-5")
    assert b"X-PM-Metadata-event_id: lead-5" in kit.wire(routed)


def test_a_refused_token_explains_the_server_token(kit: Any) -> None:
    server = kit.server(auth_reply=BAD_TOKEN)
    report = kit.verify_on(server, provider="postmark", password="account-token")
    assert report.failure is not None and report.failure.reply == BAD_TOKEN
    assert any("Server API Token as both username and password" in hint for hint in report.hints)


def test_an_unconfirmed_sender_explains_sender_signatures(kit: Any) -> None:
    server = kit.server(data_reply=NO_SIGNATURE)
    report = kit.verify_on(server, provider="postmark", send_test="lead@example.com")
    assert report.failure is not None and report.failure.step == Step.SEND
    assert any("Sender Signature" in hint for hint in report.hints)


def test_port_465_is_pointed_out_as_not_offered(kit: Any) -> None:
    hints = kit.hints(kit.account(provider="postmark", port=465, security="tls"), "tcp: connection refused")
    assert any("no implicit-TLS port" in hint for hint in hints)
