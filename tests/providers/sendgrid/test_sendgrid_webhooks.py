"""SendGrid Signed Event Webhook through a real server: ECDSA P-256 keys made here."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from webhook_kit import RECIPIENT, failing_once_app, sent_event, states, suppressed, webhook_app

from plugins.sendgrid.webhooks import parse

KEY = ec.generate_private_key(ec.SECP256R1())
PUBLIC_DER_B64 = base64.b64encode(
    KEY.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
).decode()


def events(*kinds: str, **extra: Any) -> list[dict[str, Any]]:
    """Shaped like SendGrid's Event Webhook reference; unique args (event_id, tenant) at top level."""
    base = {
        "email": RECIPIENT,
        "timestamp": int(time.time()),
        "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
        "sg_event_id": "sg_event_id-1",
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        "event_id": "wh-1",
        "tenant": "default",
        "category": ["cat facts"],
    }
    shapes: dict[str, dict[str, Any]] = {
        "delivered": {"event": "delivered", "response": "250 OK", "ip": "168.1.1.1", "tls": 1},
        "bounce": {
            "event": "bounce",
            "type": "bounce",
            "status": "5.1.1",
            "reason": "550 5.1.1 The email account that you tried to reach does not exist.",
            "bounce_classification": "Invalid Address",
        },
        "blocked": {"event": "bounce", "type": "blocked", "status": "5.7.1", "reason": "550 5.7.1 blocked by reputation"},
        "spamreport": {"event": "spamreport"},
        "click": {"event": "click", "url": "https://shop.example/", "useragent": "Mozilla/5.0"},
        "processed": {"event": "processed"},
    }
    return [{**base, **shapes[k], **extra} for k in kinds]


def signed(body: bytes, *, at: int | None = None, key: ec.EllipticCurvePrivateKey = KEY) -> dict[str, str]:
    stamp = str(at if at is not None else int(time.time()))
    signature = key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
        "Content-Type": "application/json",
    }


@pytest.fixture
def url(write_config: Callable[..., Path], redis_client: redis.Redis) -> Iterator[str]:
    sent_event(redis_client)
    with webhook_app(write_config, f'[webhooks.sendgrid]\npublic_key = "{PUBLIC_DER_B64}"\n') as base:
        yield f"{base}/webhooks/sendgrid"


def test_a_signed_batch_is_applied_as_status_updates_and_a_hard_bounce_suppresses(url: str, redis_client: redis.Redis) -> None:
    body = json.dumps(events("processed", "delivered", "click", "bounce")).encode()
    response = httpx.post(url, content=body, headers=signed(body))
    assert response.status_code == 200
    assert response.json() == {"received": 3, "applied": 3, "unmatched": 0, "subscription": None}
    assert states(redis_client) == ["accepted", "sent", "delivered", "clicked", "bounced"]
    assert suppressed(redis_client) == "user_unknown"


def test_a_reputation_block_and_a_complaint_are_told_apart(url: str, redis_client: redis.Redis) -> None:
    body = json.dumps(events("blocked")).encode()
    assert httpx.post(url, content=body, headers=signed(body)).status_code == 200
    assert suppressed(redis_client) is None  # a 5.7.1 block is soft
    body = json.dumps(events("spamreport", sg_event_id="sg-2")).encode()
    assert httpx.post(url, content=body, headers=signed(body)).status_code == 200
    assert suppressed(redis_client) == "feedback"
    assert states(redis_client)[-2:] == ["bounced", "complained"]


def test_a_bad_signature_a_stale_timestamp_and_a_replay_are_401_and_change_nothing(url: str, redis_client: redis.Redis) -> None:
    body = json.dumps(events("bounce")).encode()
    other_key = ec.generate_private_key(ec.SECP256R1())
    tampered = body.replace(b"5.1.1", b"5.1.2")
    for headers, payload in (
        (signed(body, key=other_key), body),
        (signed(body), tampered),
        (signed(body, at=int(time.time()) - 3600), body),
        ({"Content-Type": "application/json"}, body),
    ):
        assert httpx.post(url, content=payload, headers=headers).status_code == 401
    assert states(redis_client) == ["accepted", "sent"] and suppressed(redis_client) is None
    headers = signed(body)
    assert httpx.post(url, content=body, headers=headers).status_code == 200
    assert httpx.post(url, content=body, headers=headers).status_code == 401
    assert states(redis_client) == ["accepted", "sent", "bounced"]


def test_an_oversized_request_is_413_before_anything_is_read(url: str, redis_client: redis.Redis) -> None:
    body = json.dumps(events("bounce", padding="x" * 30_000)).encode()
    assert httpx.post(url, content=body, headers=signed(body)).status_code == 413
    assert states(redis_client) == ["accepted", "sent"]


def test_dropped_events_map_onto_our_taxonomy() -> None:
    body = json.dumps(events("delivered", event="dropped", reason="Unsubscribed Address")).encode()
    (event,) = parse(body)
    assert (event.event, event.reason, event.event_id, event.raw["sg_event_id"]) == (
        "unsubscribed",
        "unsubscribed",
        "wh-1",
        "sg_event_id-1",
    )


def test_an_invalid_drop_suppresses_the_address_and_a_message_level_drop_does_not(url: str, redis_client: redis.Redis) -> None:
    """SendGrid drops "Invalid" for addresses on its Invalid Emails list: it will never send to them."""
    header = json.dumps(events("delivered", event="dropped", reason="Invalid SMTPAPI header", status="5.0.0")).encode()
    assert httpx.post(url, content=header, headers=signed(header)).status_code == 200
    assert suppressed(redis_client) is None
    invalid = json.dumps(events("delivered", event="dropped", reason="Invalid", status="5.0.0", sg_event_id="sg-3")).encode()
    assert httpx.post(url, content=invalid, headers=signed(invalid)).json()["applied"] == 1
    assert suppressed(redis_client) == "user_unknown"


def test_a_batch_whose_apply_failed_is_applied_when_sendgrid_retries_it(
    write_config: Callable[..., Path], redis_client: redis.Redis
) -> None:
    sent_event(redis_client)
    with failing_once_app(write_config, f'[webhooks.sendgrid]\npublic_key = "{PUBLIC_DER_B64}"\n') as base:
        body = json.dumps(events("bounce")).encode()
        headers = signed(body)
        assert httpx.post(f"{base}/webhooks/sendgrid", content=body, headers=headers).status_code == 500
        assert httpx.post(f"{base}/webhooks/sendgrid", content=body, headers=headers).json()["applied"] == 1
        assert httpx.post(f"{base}/webhooks/sendgrid", content=body, headers=headers).status_code == 401
    assert states(redis_client) == ["accepted", "sent", "bounced"]
    assert suppressed(redis_client) == "user_unknown"
