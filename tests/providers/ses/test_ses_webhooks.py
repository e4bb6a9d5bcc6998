"""SES events through SNS on a real server: an SNS-style signing certificate made here, served by a
local certificate source (the cache in front of it is the real one)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from webhook_kit import RECIPIENT, sent_event, states, suppressed, webhook_app

from pipeline.http.certificates import CertificateCache
from plugins.ses.webhooks import string_to_sign

TOPIC = "arn:aws:sns:eu-west-1:123456789012:ses-events"
CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem"


def make_cert() -> tuple[rsa.RSAPrivateKey, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(serialization.Encoding.PEM)


KEY, PEM = make_cert()
OTHER_KEY, _ = make_cert()


def ses_bounce(kind: str = "Permanent", subtype: str = "General", status: str = "5.1.1") -> dict[str, Any]:
    """Shaped like SES event publishing's Bounce record."""
    return {
        "eventType": "Bounce",
        "bounce": {
            "feedbackId": "0102017b-bounce",
            "bounceType": kind,
            "bounceSubType": subtype,
            "bouncedRecipients": [
                {
                    "emailAddress": RECIPIENT,
                    "action": "failed",
                    "status": status,
                    "diagnosticCode": f"smtp; 550 {status} user unknown",
                }
            ],
            "timestamp": "2017-08-05T00:41:02.669Z",
            "reportingMTA": "dsn; mta.example.com",
        },
        "mail": {
            "timestamp": "2017-08-05T00:40:02.012Z",
            "source": "Sender <sender@acme.example>",
            "messageId": "EXAMPLE7c191be45",
            "destination": [RECIPIENT],
            "headersTruncated": False,
            "commonHeaders": {
                "from": ["sender@acme.example"],
                "to": [RECIPIENT],
                "messageId": "<abc@acme.example>",
                "subject": "Hi",
            },
            "tags": {"ses:configuration-set": ["ConfigSet"], "event_id": ["wh-1"], "tenant": ["default"]},
        },
    }


def sns(
    message: dict[str, Any] | str,
    *,
    kind: str = "Notification",
    version: str = "1",
    key: rsa.RSAPrivateKey = KEY,
    at: dt.datetime | None = None,
    cert_url: str = CERT_URL,
    topic: str = TOPIC,
) -> dict[str, Any]:
    envelope: dict[str, Any] = {
        "Type": kind,
        "MessageId": str(uuid.uuid4()),
        "TopicArn": topic,
        "Message": message if isinstance(message, str) else json.dumps(message),
        "Timestamp": (at or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "SignatureVersion": version,
        "SigningCertURL": cert_url,
        "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=x",
    }
    if kind == "SubscriptionConfirmation":
        envelope["Token"] = (
            "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a747ba6f3beb71854e285d6ad02428b09ceece29417f1f02d609c582afbacc99c583a916b9981dd2728f4ae6fdb82efd087cc3b7849e05798d2d2785c03b0879594eeac82c01f235d0e717736"
        )
        envelope["SubscribeURL"] = "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=x&Token=y"
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    envelope["Signature"] = base64.b64encode(key.sign(string_to_sign(envelope), padding.PKCS1v15(), algorithm)).decode()
    return envelope


@pytest.fixture
def fetched() -> list[str]:
    return []


@pytest.fixture
def url(write_config: Callable[..., Path], redis_client: redis.Redis, fetched: list[str]) -> Iterator[str]:
    def fetch(cert_url: str) -> bytes:
        fetched.append(cert_url)
        return PEM

    sent_event(redis_client)
    toml = f'[webhooks.ses]\ntopic_arns = ["{TOPIC}"]\n'
    with webhook_app(write_config, toml, certificates=CertificateCache(fetch=fetch)) as base:
        yield f"{base}/webhooks/ses"


def post(url: str, envelope: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        url,
        content=json.dumps(envelope).encode(),
        headers={"Content-Type": "text/plain; charset=UTF-8", "x-amz-sns-message-type": envelope["Type"]},
    )


def test_signed_v1_and_v2_notifications_are_applied_and_the_certificate_is_fetched_once(
    url: str, redis_client: redis.Redis, fetched: list[str]
) -> None:
    delivery = {
        **ses_bounce(),
        "eventType": "Delivery",
        "delivery": {
            "timestamp": "2017-08-05T00:41:02.669Z",
            "processingTimeMillis": 100,
            "recipients": [RECIPIENT],
            "smtpResponse": "250 2.6.0 Message received",
        },
    }
    assert post(url, sns(delivery, version="1")).json()["applied"] == 1
    assert post(url, sns(ses_bounce(), version="2")).status_code == 200
    assert states(redis_client) == ["accepted", "sent", "delivered", "bounced"]
    assert suppressed(redis_client) == "user_unknown"
    assert fetched == [CERT_URL]


def test_a_transient_bounce_is_soft_and_a_complaint_suppresses(url: str, redis_client: redis.Redis) -> None:
    assert post(url, sns(ses_bounce("Transient", "MailboxFull", "4.2.2"))).status_code == 200
    assert suppressed(redis_client) is None
    complaint = {
        **ses_bounce(),
        "eventType": "Complaint",
        "complaint": {
            "complainedRecipients": [{"emailAddress": RECIPIENT}],
            "timestamp": "2017-08-05T00:41:02.669Z",
            "feedbackId": "0102017b-complaint",
            "complaintFeedbackType": "abuse",
        },
    }
    assert post(url, sns(complaint)).status_code == 200
    assert suppressed(redis_client) == "feedback"


def test_a_forged_stale_replayed_foreign_topic_or_foreign_host_message_is_401_and_changes_nothing(
    url: str, redis_client: redis.Redis, fetched: list[str]
) -> None:
    tampered = sns(ses_bounce())
    tampered["Message"] = tampered["Message"].replace("wh-1", "wh-2")
    for envelope in (
        sns(ses_bounce(), key=OTHER_KEY),
        tampered,
        sns(ses_bounce(), at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)),
        sns(ses_bounce(), topic="arn:aws:sns:eu-west-1:999999999999:someone-elses-topic"),
        sns(ses_bounce(), cert_url="https://sns.eu-west-1.amazonaws.com.evil.example/cert.pem"),
        sns(ses_bounce(), cert_url="http://sns.eu-west-1.amazonaws.com/cert.pem"),
        {"Type": "Notification", "Message": "{}"},
    ):
        assert post(url, envelope).status_code == 401
    assert all(u == CERT_URL for u in fetched)  # no other host was ever asked
    assert states(redis_client) == ["accepted", "sent"] and suppressed(redis_client) is None
    once = sns(ses_bounce())
    assert post(url, once).status_code == 200
    assert post(url, once).status_code == 401
    assert states(redis_client) == ["accepted", "sent", "bounced"]


def test_a_subscription_confirmation_is_verified_and_left_pending_unless_confirming_is_configured(url: str) -> None:
    response = post(url, sns("You have chosen to subscribe to the topic", kind="SubscriptionConfirmation"))
    assert response.status_code == 200 and response.json()["subscription"] == "pending"
    forged = sns("You have chosen to subscribe", kind="SubscriptionConfirmation", key=OTHER_KEY)
    assert post(url, forged).status_code == 401


def test_an_oversized_request_is_413(url: str, redis_client: redis.Redis) -> None:
    big = {**ses_bounce(), "padding": "x" * 30_000}
    assert post(url, sns(big)).status_code == 413
    assert states(redis_client) == ["accepted", "sent"]
