"""POST /v1/events and GET /v1/events/{id} on a real server, real Redis, real workers for the send."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import redis
from eventually import wait_until_final

from pipeline.config import Config
from pipeline.smtp.devsmtp import DevSMTPServer
from pipeline.state.status import StatusStore


def lead(i: int, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": f"http-{i}",
        "to": f"lead{i}@receiver.example",
        "subject": "Hi {{ name }}",
        "text": "Hello",
        "data": {"name": f"N{i}"},
        **fields,
    }


def test_a_request_without_a_valid_bearer_token_is_refused_and_nothing_is_accepted(
    serve_config: Callable[..., Config], start_app: Callable[..., Any], client: httpx.Client, redis_client: redis.Redis
) -> None:
    url, _ = start_app(serve_config())
    for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": "Basic Zm9vOmJhcg=="}):
        response = client.post(f"{url}/v1/events", json=lead(1), headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
    assert StatusStore(redis_client).get("default", "http-1") is None


def test_a_batch_with_some_invalid_events_accepts_the_valid_ones_and_lists_the_others(
    serve_config: Callable[..., Config],
    start_app: Callable[..., Any],
    client: httpx.Client,
    auth: dict[str, str],
    redis_client: redis.Redis,
) -> None:
    url, _ = start_app(serve_config())
    batch = [lead(1), {"event_id": "http-bad", "to": "not an address", "subject": "x", "text": "y"}, lead(2), "not an object"]
    response = client.post(f"{url}/v1/events", json=batch, headers=auth)
    assert response.status_code == 207
    body = response.json()
    assert body["accepted"] == ["http-1", "http-2"]
    assert [(e["index"], e["event_id"]) for e in body["errors"]] == [(1, "http-bad"), (3, None)]
    assert any(line.startswith("to:") for line in body["errors"][0]["errors"])
    assert StatusStore(redis_client).get("default", "http-1") is not None
    assert StatusStore(redis_client).get("default", "http-bad") is None


def test_a_request_with_no_valid_event_is_422_and_a_single_valid_event_is_202(
    serve_config: Callable[..., Config], start_app: Callable[..., Any], client: httpx.Client, auth: dict[str, str]
) -> None:
    url, _ = start_app(serve_config())
    refused = client.post(f"{url}/v1/events", json=[{"event_id": "x"}], headers=auth)
    assert refused.status_code == 422 and refused.json()["accepted"] == []
    assert client.post(f"{url}/v1/events", content=b"{not json", headers=auth).status_code == 422
    assert client.post(f"{url}/v1/events", json=[], headers=auth).status_code == 422
    accepted = client.post(f"{url}/v1/events", json=lead(7), headers=auth)
    assert accepted.status_code == 202 and accepted.json() == {"accepted": ["http-7"], "duplicates": [], "errors": []}


def test_a_batch_over_max_batch_or_a_body_over_max_body_bytes_is_413(
    serve_config: Callable[..., Config],
    start_app: Callable[..., Any],
    client: httpx.Client,
    auth: dict[str, str],
    redis_client: redis.Redis,
) -> None:
    config = serve_config()
    url, _ = start_app(config)
    too_many = client.post(f"{url}/v1/events", json=[lead(i) for i in range(config.serve.max_batch + 1)], headers=auth)
    assert too_many.status_code == 413
    too_big = client.post(f"{url}/v1/events", json=lead(1, text="x" * config.serve.max_body_bytes), headers=auth)
    assert too_big.status_code == 413
    chunked = client.post(f"{url}/v1/events", content=iter([b"[" + b" " * config.serve.max_body_bytes, b"]"]), headers=auth)
    assert chunked.status_code == 413
    assert StatusStore(redis_client).get("default", "http-0") is None


def test_a_resubmitted_event_is_reported_as_a_duplicate_and_sent_once_and_its_history_is_served(
    serve_config: Callable[..., Config],
    start_app: Callable[..., Any],
    client: httpx.Client,
    auth: dict[str, str],
    redis_client: redis.Redis,
    smtp_server: DevSMTPServer,
    start_workers: Callable[..., Any],
) -> None:
    config = serve_config()
    url, _ = start_app(config)
    start_workers(Path(os.environ["MAILPIPE_CONFIG"]), processes=1, threads=4)
    first = client.post(f"{url}/v1/events", json=lead(1), headers=auth)
    assert first.json()["accepted"] == ["http-1"]
    assert wait_until_final(StatusStore(redis_client), ["http-1"], timeout=60) == {"http-1": "sent"}
    again = client.post(f"{url}/v1/events", json=[lead(1), lead(1)], headers=auth)
    assert again.status_code == 202 and again.json()["duplicates"] == ["http-1", "http-1"]
    assert len(smtp_server.wait_for(1, timeout=10)) == 1
    status = client.get(f"{url}/v1/events/http-1", headers=auth)
    assert status.status_code == 200
    body = status.json()
    assert body["outcome"] == "sent" and body["history"][0]["state"] == "accepted"
    assert "sent" in [h["state"] for h in body["history"]]
    assert len(smtp_server.received) == 1
    assert client.get(f"{url}/v1/events/unknown-id", headers=auth).status_code == 404
    assert client.get(f"{url}/v1/events/http-1").status_code == 401
