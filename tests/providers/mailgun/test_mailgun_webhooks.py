"""Mailgun webhooks through a real server: HMAC-SHA256 of timestamp + token, single-use tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from webhook_kit import RECIPIENT, failing_once_app, sent_event, states, suppressed, webhook_app

from pipeline.state.status import StatusStore

SIGNING_KEY = "key-" + secrets.token_hex(16)


def signature(*, key: str = SIGNING_KEY, at: float | None = None, token: str | None = None) -> dict[str, str]:
    timestamp = str(int(at if at is not None else time.time()))
    token = token or secrets.token_hex(25)
    digest = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return {"timestamp": timestamp, "token": token, "signature": digest}


def failed(
    severity: str = "permanent", code: int = 550, message: str = "5.1.1 The email account does not exist"
) -> dict[str, Any]:
    """Shaped like Mailgun's `failed` event in its webhooks documentation."""
    return {
        "id": "G9Bn5sl1TC6nu79C8C0bwg",
        "timestamp": time.time(),
        "log-level": "error",
        "event": "failed",
        "severity": severity,
        "reason": "bounce" if severity == "permanent" else "generic",
        "recipient": RECIPIENT,
        "recipient-domain": "receiver.example",
        "message": {
            "headers": {
                "to": RECIPIENT,
                "message-id": "20130503192659.13651.20287@acme.example",
                "from": "Bob <bob@acme.example>",
                "subject": "Test",
            },
            "attachments": [],
            "size": 111,
        },
        "delivery-status": {"attempt-no": 1, "code": code, "message": message, "description": "", "session-seconds": 0.1},
        "flags": {"is-routed": False, "is-authenticated": True},
        "user-variables": {"event_id": "wh-1", "tenant": "default"},
    }


@pytest.fixture
def url(write_config: Callable[..., Path], redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("TEST_MAILGUN_KEY", SIGNING_KEY)
    sent_event(redis_client)
    with webhook_app(write_config, '[webhooks.mailgun]\nsigning_key = "env:TEST_MAILGUN_KEY"\n') as base:
        yield f"{base}/webhooks/mailgun"


def test_a_signed_permanent_failure_is_a_hard_bounce_update_and_suppresses(url: str, redis_client: redis.Redis) -> None:
    response = httpx.post(url, json={"signature": signature(), "event-data": failed()})
    assert response.status_code == 200 and response.json()["applied"] == 1
    assert states(redis_client) == ["accepted", "sent", "bounced"]
    assert suppressed(redis_client) == "user_unknown"


def test_a_temporary_failure_is_deferred_and_opens_and_complaints_are_recorded(url: str, redis_client: redis.Redis) -> None:
    temporary = failed("temporary", 452, "4.2.2 Mailbox full")
    assert httpx.post(url, json={"signature": signature(), "event-data": temporary}).status_code == 200
    opened = {**failed(), "event": "opened"}
    complained = {**failed(), "event": "complained"}
    for event in (opened, complained):
        assert httpx.post(url, json={"signature": signature(), "event-data": event}).status_code == 200
    assert states(redis_client) == ["accepted", "sent", "deferred", "opened", "complained"]
    assert suppressed(redis_client) == "feedback"


def test_a_bad_signature_a_stale_timestamp_and_a_reused_token_are_401_and_change_nothing(
    url: str, redis_client: redis.Redis
) -> None:
    for signed in (signature(key="key-wrong"), signature(at=time.time() - 3600), {"timestamp": "1", "token": "t"}, None):
        body: dict[str, Any] = {"event-data": failed()}
        if signed is not None:
            body["signature"] = signed
        assert httpx.post(url, json=body).status_code == 401
    assert states(redis_client) == ["accepted", "sent"] and suppressed(redis_client) is None
    once = signature()
    assert httpx.post(url, json={"signature": once, "event-data": {**failed(), "event": "delivered"}}).status_code == 200
    # Mailgun signs timestamp + token only: a captured signature must not carry another body
    assert httpx.post(url, json={"signature": once, "event-data": failed()}).status_code == 401
    assert states(redis_client) == ["accepted", "sent", "delivered"] and suppressed(redis_client) is None


def test_an_oversized_request_is_413(url: str, redis_client: redis.Redis) -> None:
    body = {"signature": signature(), "event-data": {**failed(), "padding": "x" * 30_000}}
    assert httpx.post(url, json=body).status_code == 413
    assert states(redis_client) == ["accepted", "sent"]


@pytest.mark.parametrize("severity", ["temporary", "permanent"])
def test_greylisting_is_a_soft_failure_never_an_unknown_user(url: str, redis_client: redis.Redis, severity: str) -> None:
    """Mailgun reports greylisting as `failed` with reason `greylisted` (and, after its retries, as permanent)."""
    greylisted = {
        **failed(
            severity,
            450,
            "4.2.0 <reader@receiver.example>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/receiver.example.html",
        ),
        "reason": "greylisted",
    }
    assert httpx.post(url, json={"signature": signature(), "event-data": greylisted}).status_code == 200
    status = StatusStore(redis_client).get("default", "wh-1")
    assert status is not None and status.history[-1]["state"] == ("deferred" if severity == "temporary" else "bounced")
    assert status.history[-1].get("reason") != "user_unknown"
    assert suppressed(redis_client) is None


def test_a_failure_whose_apply_failed_is_applied_when_mailgun_retries_it(
    write_config: Callable[..., Path], redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_MAILGUN_KEY", SIGNING_KEY)
    sent_event(redis_client)
    with failing_once_app(write_config, '[webhooks.mailgun]\nsigning_key = "env:TEST_MAILGUN_KEY"\n') as base:
        body = {"signature": signature(), "event-data": failed()}
        assert httpx.post(f"{base}/webhooks/mailgun", json=body).status_code == 500
        assert httpx.post(f"{base}/webhooks/mailgun", json=body).json()["applied"] == 1
        assert httpx.post(f"{base}/webhooks/mailgun", json=body).status_code == 401  # the token is spent now
    assert states(redis_client) == ["accepted", "sent", "bounced"]
    assert suppressed(redis_client) == "user_unknown"
