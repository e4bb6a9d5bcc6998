"""Postmark webhooks through a real server: basic auth or a secret path token."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from webhook_kit import RECIPIENT, sent_event, states, suppressed, webhook_app

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


def test_wrong_credentials_and_a_replay_are_401_and_change_nothing(base: str, redis_client: redis.Redis) -> None:
    assert httpx.post(base, json=bounce()).status_code == 401
    assert httpx.post(base, json=bounce(), auth=(USER, "wrong")).status_code == 401
    assert httpx.post(f"{base}/wrong-path-token", json=bounce()).status_code == 401
    assert states(redis_client) == ["accepted", "sent"] and suppressed(redis_client) is None
    once = bounce()
    assert httpx.post(base, json=once, auth=(USER, PASSWORD)).status_code == 200
    assert httpx.post(base, json=once, auth=(USER, PASSWORD)).status_code == 401
    assert states(redis_client) == ["accepted", "sent", "bounced"]


def test_an_oversized_request_is_413(base: str, redis_client: redis.Redis) -> None:
    assert httpx.post(base, json=bounce(Content="x" * 30_000), auth=(USER, PASSWORD)).status_code == 413
    assert states(redis_client) == ["accepted", "sent"]
