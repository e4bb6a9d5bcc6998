"""DSN mails and webhook bodies arrive from the internet: no input makes them raise an unexpected error."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import importlib
import json
import time
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from pipeline.bounces import BounceReport, parse_bounce
from pipeline.feedback.webhooks import WebhookPayloadError, WebhookRejected, WebhookSettings
from pipeline.plugin_host.manager import get_plugin_manager

DSN = b"""From: MAILER-DAEMON@mx.example
To: bounces@sender.example
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

This is the mail system. The message could not be delivered.
<nobody@receiver.example>: host mx.receiver.example said: 550 5.1.1 User unknown
--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example

Final-Recipient: rfc822; nobody@receiver.example
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 User unknown
--B--
"""
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=25,
)


def test_the_real_shaped_dsn_parses_as_a_hard_bounce() -> None:
    report = parse_bounce(DSN)
    assert isinstance(report, BounceReport)
    assert "nobody@receiver.example" in json.dumps(report.__dict__, default=str)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_parse_to_a_report_never_an_exception(raw: bytes) -> None:
    report = parse_bounce(raw)
    assert isinstance(report, BounceReport) and not report.internal_error


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(DSN)), st.integers(0, 200), st.binary(max_size=40)), max_size=5))
def test_a_mangled_dsn_parses_to_a_report_never_an_exception(edits: list[tuple[int, int, bytes]]) -> None:
    raw = DSN
    for at, cut, insert in edits:
        raw = raw[:at] + insert + raw[at + cut :]
    report = parse_bounce(raw)
    assert isinstance(report, BounceReport) and not report.internal_error


def parse(provider: str, headers: dict[str, str], body: bytes, options: dict[str, Any], path_token: str | None = None) -> Any:
    pm = get_plugin_manager()
    settings_ = WebhookSettings(options=options, now=time.time(), path_token=path_token, certificates=lambda _url: SNS_PEM)
    return pm.hook.mailpipe_parse_webhook(provider=provider, headers=headers, body=body, settings=settings_)


def _sns_certificate() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = dt.datetime.now(dt.UTC)
    builder = x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
    builder = builder.serial_number(1).not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=9))
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


SNS_PEM = _sns_certificate()
SENDGRID_PUBLIC_KEY = base64.b64encode(
    ec.generate_private_key(ec.SECP256R1())
    .public_key()
    .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
).decode()
PROVIDERS = ["sendgrid", "mailgun", "ses", "postmark"]
# Complete, valid configuration for every provider: a refusal can only come from authentication
OPTIONS = {
    "public_key": SecretStr(SENDGRID_PUBLIC_KEY),
    "signing_key": SecretStr("k" * 32),
    "topic_arns": ["arn:aws:sns:eu-west-1:123456789012:ses-events"],
    "path_token": SecretStr("tok"),
    "username": SecretStr("u"),
    "password": SecretStr("p"),
}
# Bodies a plugin would accept, were it not for their missing signature or credentials
PLAUSIBLE = {
    "sendgrid": b'[{"event": "bounce", "email": "a@b.example", "reason": "550 5.1.1 unknown"}]',
    "mailgun": b'{"event-data": {"event": "failed", "severity": "permanent", "recipient": "a@b.example"}}',
    "ses": json.dumps({"Type": "Notification", "Message": json.dumps({"eventType": "Delivery"})}).encode(),
    "postmark": b'{"RecordType": "Bounce", "Type": "HardBounce", "Email": "a@b.example"}',
}


def assert_refused_as_unauthentic(provider: str, headers: dict[str, str], body: bytes) -> None:
    """The plugin must raise WebhookRejected: not return (even None or []), not say "not configured"."""
    with pytest.raises(WebhookRejected):
        parse(provider, headers, body, OPTIONS)


@pytest.mark.parametrize("provider", PROVIDERS)
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.binary(max_size=500) | json_values.map(lambda v: json.dumps(v).encode()),
    headers=st.dictionaries(
        st.sampled_from(
            [
                "content-type",
                "authorization",
                "x-twilio-email-event-webhook-signature",
                "x-twilio-email-event-webhook-timestamp",
                "x-amz-sns-message-type",
            ]
        ),
        st.text(max_size=40),
        max_size=3,
    ),
)
def test_unauthenticated_webhook_bodies_are_refused_clearly(provider: str, body: bytes, headers: dict[str, str]) -> None:
    assert_refused_as_unauthentic(provider, headers, body)
    assert_refused_as_unauthentic(provider, headers, PLAUSIBLE[provider])


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_refusal_check_fails_when_signature_checks_are_turned_off(provider: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The test above measures: with the plugin's verify() a no-op, a plausible body gets through."""
    assert_refused_as_unauthentic(provider, {"content-type": "application/json"}, PLAUSIBLE[provider])
    monkeypatch.setattr(importlib.import_module(f"plugins.{provider}.webhooks"), "verify", lambda *_args, **_kwargs: None)
    with pytest.raises(pytest.fail.Exception, match="DID NOT RAISE"):
        assert_refused_as_unauthentic(provider, {"content-type": "application/json"}, PLAUSIBLE[provider])


def signed_mailgun(event_data: Any) -> bytes:
    timestamp, token = str(int(time.time())), hashlib.sha256(json.dumps(event_data, default=str).encode()).hexdigest()
    signature = hmac.new(b"k" * 32, (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return json.dumps(
        {"signature": {"timestamp": timestamp, "token": token, "signature": signature}, "event-data": event_data}
    ).encode()


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            ["event", "recipient", "severity", "reason", "delivery-status", "message", "user-variables", "timestamp", "id"]
        ),
        st.sampled_from(["failed", "delivered", "complained", "temporary", "permanent"]) | json_values,
        max_size=9,
    )
    | json_values
)
def test_authentic_but_arbitrary_mailgun_payloads_parse_or_are_refused_as_unreadable(event_data: Any) -> None:
    try:
        result = parse("mailgun", {"content-type": "application/json"}, signed_mailgun(event_data), OPTIONS)
    except (WebhookPayloadError, WebhookRejected):
        return
    assert result is None or isinstance(result, list)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_authentic_but_arbitrary_postmark_payloads_parse_or_are_refused_as_unreadable(payload: Any) -> None:
    try:
        result = parse("postmark", {"content-type": "application/json"}, json.dumps(payload).encode(), OPTIONS, path_token="tok")
    except (WebhookPayloadError, WebhookRejected):
        return
    assert result is None or isinstance(result, list)
