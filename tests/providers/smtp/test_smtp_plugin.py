"""The generic SMTP provider: nothing preset but the port, an opt-in From rule, and a "known host" hint."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.config import resolve_account
from pipeline.errors import ConfigError


def test_the_generic_preset_needs_a_host(kit: Any) -> None:
    account = kit.account(provider="smtp")
    with pytest.raises(ConfigError, match="host is required"):
        resolve_account(account, kit.preset(account))
    resolved = resolve_account(kit.account(provider="smtp", host="mail.example.net", port=465, security="tls"), None)
    assert resolved.port == 465


def test_the_from_rule_is_opt_in_for_a_mailbox_server(kit: Any) -> None:
    plain = kit.account(provider="smtp", host="mail.example.net", username="me@acme.example", from_email="sales@acme.example")
    assert kit.prepared(plain).from_addr == "sales@acme.example"
    mailbox = plain.model_copy(update={"options": {"rewrite_from": True}})
    assert kit.prepared(mailbox).from_addr == "me@acme.example"


def test_a_known_providers_host_suggests_that_provider(kit: Any) -> None:
    account = kit.account(provider="smtp", host="smtp.gmail.com")
    hints = kit.hints(account, "auth: 535 5.7.8 Username and Password not accepted.")
    assert hints[0].startswith('smtp.gmail.com is gmail\'s server: set provider = "gmail"')
