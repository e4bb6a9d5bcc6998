"""Amazon SES: region-required host, configuration set and tags, IAM SMTP credential hints."""

from __future__ import annotations

from email import message_from_bytes, policy
from typing import Any

import pytest

from pipeline.config import resolve_account
from pipeline.errors import ConfigError
from pipeline.plugin_host.hints import Step
from pipeline.smtp.verify import verify

BAD_LOGIN = "535 Authentication Credentials Invalid"
NOT_VERIFIED = "554 Message rejected: Email address is not verified. The following identities failed the check in region US-EAST-1: sales@acme.example"  # noqa: E501


def test_the_region_fills_the_host(kit: Any) -> None:
    account = kit.account(provider="ses", region="eu-west-1", username="AKIAEXAMPLE", password="smtp-pw")
    resolved = resolve_account(account, kit.preset(account))
    assert resolved.host == "email-smtp.eu-west-1.amazonaws.com"
    assert (resolved.limits.per_second, resolved.limits.per_day) == (1, 200)


def test_an_account_without_region_is_a_config_error_that_verify_reports(kit: Any) -> None:
    account = kit.account(provider="ses", username="AKIAEXAMPLE", password="smtp-pw")
    with pytest.raises(ConfigError, match="needs region"):
        resolve_account(account, kit.preset(account))
    report = verify(account, pm=kit.pm)
    assert report.failure is not None and report.failure.step == Step.CONFIG
    assert any("email-smtp.<region>.amazonaws.com" in hint for hint in report.hints)


def test_the_configuration_set_and_message_tags_are_added(kit: Any) -> None:
    account = kit.account(provider="ses", region="us-east-1", options={"configuration_set": "mailpipe-events"})
    routed = kit.prepared(account, event_id="lead-3", tenant="acme")
    headers = routed.message.headers
    assert headers["X-SES-CONFIGURATION-SET"] == "mailpipe-events"
    assert headers["X-SES-MESSAGE-TAGS"] == "event_id=lead-3, tenant=acme"
    on_wire = message_from_bytes(kit.wire(routed), policy=policy.default)
    assert str(on_wire["X-SES-CONFIGURATION-SET"]) == "mailpipe-events"


def test_a_tag_value_ses_would_reject_is_left_out(kit: Any) -> None:
    account = kit.account(provider="ses", region="us-east-1")
    routed = kit.prepared(account, event_id="crm:lead/42", tenant="acme.eu")
    assert "X-SES-MESSAGE-TAGS" not in routed.message.headers
    assert "X-SES-CONFIGURATION-SET" not in routed.message.headers


def test_refused_credentials_explain_iam_smtp_credentials_and_their_region(kit: Any) -> None:
    server = kit.server(auth_reply=BAD_LOGIN)
    report = kit.verify_on(server, provider="ses", region="eu-west-1", password="the-aws-secret-key")
    assert report.failure is not None and report.failure.reply == BAD_LOGIN
    assert any("not your AWS access key and secret" in hint for hint in report.hints)
    assert any("from eu-west-1" in hint for hint in report.hints)


def test_an_unverified_identity_explains_the_sandbox(kit: Any) -> None:
    server = kit.server(data_reply=NOT_VERIFIED)
    report = kit.verify_on(server, provider="ses", region="us-east-1", send_test="lead@example.com")
    assert report.failure is not None and report.failure.step == Step.SEND
    assert any("sandbox" in hint for hint in report.hints)
