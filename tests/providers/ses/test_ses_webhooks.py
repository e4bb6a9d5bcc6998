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
from typer.testing import CliRunner
from webhook_kit import RECIPIENT, failing_once_app, sent_event, states, suppressed, webhook_app

from pipeline.cli import app as cli
from pipeline.http import webhooks as webhook_route
from pipeline.http.certificates import CertificateCache
from pipeline.models import RecipientEvent
from pipeline.state.suppression import SuppressionStore
from plugins.ses.webhooks import events_of, string_to_sign

TOPIC = "arn:aws:sns:eu-west-1:123456789012:ses-events"
CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem"


def make_cert(
    key: rsa.RSAPrivateKey | None = None, *, valid_from_days: int = -1, valid_until_days: int = 30
) -> tuple[rsa.RSAPrivateKey, bytes]:
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + dt.timedelta(days=valid_from_days))
        .not_valid_after(now + dt.timedelta(days=valid_until_days))
        .sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(serialization.Encoding.PEM)


KEY, PEM = make_cert()
OTHER_KEY, _ = make_cert()
_, EXPIRED_PEM = make_cert(KEY, valid_from_days=-400, valid_until_days=-1)
_, FUTURE_PEM = make_cert(KEY, valid_from_days=2, valid_until_days=300)


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


def app_with(write_config: Callable[..., Path], toml: str, **create_kwargs: Any) -> Any:
    return webhook_app(write_config, f'[webhooks.ses]\ntopic_arns = ["{TOPIC}"]\n{toml}', **create_kwargs)


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


def test_every_event_carries_its_own_time() -> None:
    bounce = events_of(ses_bounce())
    assert [e.occurred_at for e in bounce] == [pytest.approx(dt.datetime(2017, 8, 5, 0, 41, 2, 669000, dt.UTC).timestamp())]
    opened = {**ses_bounce(), "eventType": "Open", "open": {"ipAddress": "192.0.2.1", "timestamp": "2017-08-09T22:00:19.652Z"}}
    assert events_of(opened)[0].occurred_at == pytest.approx(dt.datetime(2017, 8, 9, 22, 0, 19, 652000, dt.UTC).timestamp())
    send_only = {**ses_bounce(), "eventType": "Subscription", "subscription": {"newTopicPreferences": {"unsubscribeAll": True}}}
    mail_time = dt.datetime(2017, 8, 5, 0, 40, 2, 12000, dt.UTC).timestamp()
    assert events_of(send_only)[0].occurred_at == pytest.approx(mail_time)  # no time of its own: the mail's


def test_a_permanent_bounce_without_a_diagnostic_code_suppresses(url: str, redis_client: redis.Redis) -> None:
    bare = ses_bounce()
    del bare["bounce"]["bouncedRecipients"][0]["diagnosticCode"]
    del bare["bounce"]["bouncedRecipients"][0]["status"]
    assert post(url, sns(bare)).json()["applied"] == 1
    assert suppressed(redis_client) == "user_unknown"


def test_anymails_multiple_recipient_permanent_bounce_suppresses_each_bounced_recipient(
    url: str, redis_client: redis.Redis
) -> None:
    """The payload of django-anymail's test_multiple_bounce_event (SES notification, no diagnostics)."""
    notification = {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": "Permanent",
            "bounceSubType": "General",
            "bouncedRecipients": [{"emailAddress": "jane@example.com"}, {"emailAddress": "richard@example.com"}],
        },
        "mail": {
            "messageId": "00000137860315fd-34208509-5b74-41f3-95c5-22c1edc3c924-000000",
            "destination": ["jane@example.com", "mary@example.com", "richard@example.com"],
        },
    }
    assert post(url, sns(notification)).json()["received"] == 2
    found = SuppressionStore(redis_client).lookup("default", ["jane@example.com", "mary@example.com", "richard@example.com"])
    assert [f.reason if f else None for f in found] == ["user_unknown", None, "user_unknown"]


def test_a_permanent_content_rejection_is_not_held_against_the_address(url: str, redis_client: redis.Redis) -> None:
    rejected = ses_bounce(subtype="ContentRejected")
    del rejected["bounce"]["bouncedRecipients"][0]["diagnosticCode"]
    del rejected["bounce"]["bouncedRecipients"][0]["status"]
    assert post(url, sns(rejected)).status_code == 200
    assert suppressed(redis_client) is None


def subscription(new: dict[str, Any], old: dict[str, Any] | None = None) -> dict[str, Any]:
    """Shaped like SES event publishing's Subscription record (list-management topic preferences)."""
    return {
        **ses_bounce(),
        "eventType": "Subscription",
        "subscription": {
            "contactList": "leads",
            "timestamp": "2022-01-12T01:00:14.340Z",
            "source": "UnsubscribeHeader",
            "newTopicPreferences": new,
            "oldTopicPreferences": old or {"unsubscribeAll": False, "topicSubscriptionStatus": []},
        },
    }


def test_a_subscription_opt_in_is_not_an_unsubscribe_and_an_opt_out_of_everything_is(url: str, redis_client: redis.Redis) -> None:
    opt_in = {"unsubscribeAll": False, "topicSubscriptionStatus": [{"topicName": "offers", "subscriptionStatus": "OptIn"}]}
    one_of_two = {
        "unsubscribeAll": False,
        "topicSubscriptionStatus": [
            {"topicName": "offers", "subscriptionStatus": "OptOut"},
            {"topicName": "news", "subscriptionStatus": "OptIn"},
        ],
    }
    for preferences in (opt_in, one_of_two):
        assert post(url, sns(subscription(preferences))).json()["received"] == 0
    assert suppressed(redis_client) is None
    assert post(url, sns(subscription({"unsubscribeAll": True, "topicSubscriptionStatus": []}))).json()["applied"] == 1
    assert suppressed(redis_client) == "unsubscribed"
    assert events_of(subscription(opt_in)) == []
    assert [
        e.event
        for e in events_of(subscription({**one_of_two, "topicSubscriptionStatus": one_of_two["topicSubscriptionStatus"][:1]}))
    ] == [RecipientEvent.UNSUBSCRIBED]


@pytest.mark.parametrize("pem", [EXPIRED_PEM, FUTURE_PEM], ids=["expired", "not-yet-valid"])
def test_a_certificate_outside_its_validity_dates_is_refused(
    write_config: Callable[..., Path], redis_client: redis.Redis, pem: bytes
) -> None:
    sent_event(redis_client)
    with app_with(write_config, "", certificates=CertificateCache(fetch=lambda _url: pem)) as base:
        assert post(f"{base}/webhooks/ses", sns(ses_bounce())).status_code == 401
    assert states(redis_client) == ["accepted", "sent"] and suppressed(redis_client) is None


def test_certificates_dir_verifies_without_any_network_access(
    write_config: Callable[..., Path], redis_client: redis.Redis, tmp_path: Path
) -> None:
    directory = tmp_path / "sns-certs"
    directory.mkdir()
    (directory / CERT_URL.rsplit("/", 1)[-1]).write_bytes(PEM)

    def no_network(cert_url: str) -> bytes:
        raise AssertionError(f"fetched {cert_url} although certificates_dir is set")

    sent_event(redis_client)
    with app_with(write_config, f'certificates_dir = "{directory}"\n', certificates=no_network) as base:
        assert post(f"{base}/webhooks/ses", sns(ses_bounce())).json()["applied"] == 1
        other = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-1111111111111111111111.pem"
        assert post(f"{base}/webhooks/ses", sns(ses_bounce(), cert_url=other)).status_code == 401  # not in the directory
    assert suppressed(redis_client) == "user_unknown"


class RecordingLog:
    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, Any]]] = []

    def warning(self, event: str, **fields: Any) -> None:
        self.lines.append((event, fields))

    info = warning


def test_a_pending_subscription_url_is_logged_and_listed_for_the_operator(
    url: str, write_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    log = RecordingLog()
    monkeypatch.setattr(webhook_route, "log", log)
    envelope = sns("You have chosen to subscribe to the topic", kind="SubscriptionConfirmation")
    assert post(url, envelope).json()["subscription"] == "pending"
    assert ("sns_subscription_pending", envelope["SubscribeURL"]) in [(e, f.get("subscribe_url")) for e, f in log.lines]
    listed = CliRunner().invoke(cli, ["webhooks", "pending", "--config", str(write_config()), "--json"])
    assert listed.exit_code == 0, listed.output
    assert [json.loads(line)["subscribe_url"] for line in listed.stdout.splitlines()] == [envelope["SubscribeURL"]]


def test_a_notification_whose_apply_failed_is_applied_when_sns_retries_it(
    write_config: Callable[..., Path], redis_client: redis.Redis
) -> None:
    sent_event(redis_client)
    with failing_once_app(write_config, f'[webhooks.ses]\ntopic_arns = ["{TOPIC}"]\n', certificates=lambda _u: PEM) as base:
        envelope = sns(ses_bounce())
        assert post(f"{base}/webhooks/ses", envelope).status_code == 500
        assert post(f"{base}/webhooks/ses", envelope).json()["applied"] == 1
        assert post(f"{base}/webhooks/ses", envelope).status_code == 401  # applied: now it is a replay
    assert states(redis_client) == ["accepted", "sent", "bounced"]
