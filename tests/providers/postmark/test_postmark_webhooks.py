"""Postmark webhooks through a real server: basic auth or a secret path token."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from webhook_kit import RECIPIENT, failing_once_app, sent_event, states, suppressed, webhook_app

from pipeline.feedback.webhooks import WebhookPayloadError
from pipeline.models import RecipientEvent
from plugins.postmark.webhooks import to_event

USER, PASSWORD, PATH_TOKEN = "postmark-hooks", "pm-password-123456", "pm-path-token-abcdef123456"
_ids = itertools.count(1)


def bounce(kind: str = "HardBounce", **extra: Any) -> dict[str, Any]:
    """Shaped like Postmark's Bounce webhook example."""
    return {
        "RecordType": "Bounce",
        "MessageStream": "outbound",
        "ID": next(_ids),
        "Type": kind,
        "TypeCode": 1,
        "Name": "Hard bounce",
        "Tag": "Test",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Metadata": {"event_id": "wh-1", "tenant": "default"},
        "ServerID": 23,
        "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": RECIPIENT,
        "From": "sender@acme.example",
        "BouncedAt": "2019-11-05T16:33:54.9070259Z",
        "DumpAvailable": True,
        "Inactive": True,
        "CanActivate": True,
        "Subject": "Test subject",
        **extra,
    }


def delivery() -> dict[str, Any]:
    return {
        "RecordType": "Delivery",
        "ServerID": 23,
        "MessageStream": "outbound",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Recipient": RECIPIENT,
        "Tag": "welcome-email",
        "DeliveredAt": "2019-11-05T16:33:54.9070259Z",
        "Details": "Test delivery webhook details",
        "Metadata": {"event_id": "wh-1", "tenant": "default"},
    }


@pytest.fixture
def base(write_config: Callable[..., Path], redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("TEST_PM_PASSWORD", PASSWORD)
    monkeypatch.setenv("TEST_PM_PATH", PATH_TOKEN)
    sent_event(redis_client)
    toml = f'[webhooks.postmark]\nusername = "{USER}"\npassword = "env:TEST_PM_PASSWORD"\npath_token = "env:TEST_PM_PATH"\n'
    with webhook_app(write_config, toml) as url:
        yield f"{url}/webhooks/postmark"


def test_basic_auth_or_the_path_token_admits_a_request_and_a_hard_bounce_suppresses(base: str, redis_client: redis.Redis) -> None:
    assert httpx.post(base, json=delivery(), auth=(USER, PASSWORD)).status_code == 200
    assert httpx.post(f"{base}/{PATH_TOKEN}", json=bounce()).status_code == 200
    assert states(redis_client) == ["accepted", "sent", "delivered", "bounced"]
    assert suppressed(redis_client) == "user_unknown"


def test_a_soft_bounce_does_not_suppress_and_a_subscription_change_does(base: str, redis_client: redis.Redis) -> None:
    soft = bounce("SoftBounce", Details="smtp;452 4.2.2 mailbox full")
    assert httpx.post(base, json=soft, auth=(USER, PASSWORD)).status_code == 200
    assert suppressed(redis_client) is None
    change = {
        "RecordType": "SubscriptionChange",
        "MessageID": "883953f4",
        "ServerID": 23,
        "MessageStream": "outbound",
        "ChangedAt": "2020-02-01T10:53:34.416071Z",
        "Recipient": RECIPIENT,
        "Origin": "Recipient",
        "SuppressSending": True,
        "SuppressionReason": "ManualSuppression",
        "Tag": "my-tag",
        "Metadata": {"event_id": "wh-1", "tenant": "default"},
    }
    assert httpx.post(base, json=change, auth=(USER, PASSWORD)).status_code == 200
    assert suppressed(redis_client) == "unsubscribed"


def test_wrong_credentials_are_401_and_change_nothing(base: str, redis_client: redis.Redis) -> None:
    assert httpx.post(base, json=bounce()).status_code == 401
    assert httpx.post(base, json=bounce(), auth=(USER, "wrong")).status_code == 401
    assert httpx.post(f"{base}/wrong-path-token", json=bounce()).status_code == 401
    assert states(redis_client) == ["accepted", "sent"] and suppressed(redis_client) is None


def test_the_same_body_twice_is_answered_200_and_applied_once(base: str, redis_client: redis.Redis) -> None:
    """Postmark posts its test payload on every webhook create/edit and stops on a 4xx."""
    once = bounce()
    first = httpx.post(base, json=once, auth=(USER, PASSWORD))
    again = httpx.post(f"{base}/{PATH_TOKEN}", json=once)
    assert first.status_code == 200 and first.json()["applied"] == 1
    assert again.status_code == 200 and again.json()["received"] == 0
    assert states(redis_client) == ["accepted", "sent", "bounced"]


def test_a_retry_after_a_failed_apply_is_applied(
    write_config: Callable[..., Path], redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_PM_PATH", PATH_TOKEN)
    sent_event(redis_client)
    toml = '[webhooks.postmark]\npath_token = "env:TEST_PM_PATH"\n'
    with failing_once_app(write_config, toml) as url:
        body = bounce()
        assert httpx.post(f"{url}/webhooks/postmark/{PATH_TOKEN}", json=body).status_code == 500
        assert states(redis_client) == ["accepted", "sent"]
        retry = httpx.post(f"{url}/webhooks/postmark/{PATH_TOKEN}", json=body)
        assert retry.status_code == 200 and retry.json()["applied"] == 1
    assert states(redis_client) == ["accepted", "sent", "bounced"]
    assert suppressed(redis_client) == "user_unknown"


def test_event_times_with_seven_fractional_digits_are_kept() -> None:
    moment = dt.datetime(2019, 11, 5, 16, 33, 54, 907025, tzinfo=dt.UTC).timestamp()
    for record in (bounce(), delivery()):
        event = to_event(record)
        assert event is not None and event.occurred_at == pytest.approx(moment)
    local = to_event({**bounce(), "BouncedAt": "2019-11-05T11:33:54.9070259-05:00"})
    assert local is not None and local.occurred_at == pytest.approx(moment)


def test_a_bounce_without_record_type_is_a_bounce_and_other_records_without_it_are_refused(
    base: str, redis_client: redis.Redis
) -> None:
    legacy = {k: v for k, v in bounce().items() if k != "RecordType"}
    assert httpx.post(base, json=legacy, auth=(USER, PASSWORD)).json()["applied"] == 1
    assert states(redis_client) == ["accepted", "sent", "bounced"] and suppressed(redis_client) == "user_unknown"
    unknown = {k: v for k, v in delivery().items() if k != "RecordType"}
    assert httpx.post(base, json=unknown, auth=(USER, PASSWORD)).status_code == 400
    with pytest.raises(WebhookPayloadError, match="RecordType"):
        to_event(unknown)


def test_a_bounce_type_we_do_not_list_is_a_soft_bounce_not_dropped() -> None:
    event = to_event(bounce("SMTPApiError", Details="smtp;421 4.3.0 temporary system problem"))
    assert event is not None and event.event == RecipientEvent.BOUNCED and not event.permanent


def test_an_oversized_request_is_413(base: str, redis_client: redis.Redis) -> None:
    assert httpx.post(base, json=bounce(Content="x" * 30_000), auth=(USER, PASSWORD)).status_code == 413
    assert states(redis_client) == ["accepted", "sent"]
