"""/healthz, /metrics, unknown or unconfigured webhook providers, the `serve` command, docs/openapi.json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from eventually import eventually

from pipeline.config import Config
from pipeline.http import openapi
from pipeline.smtp.netutil import free_port, wait_for_port


def test_healthz_needs_redis_and_a_live_worker(
    serve_config: Callable[..., Config], start_app: Callable[..., Any], client: httpx.Client, start_workers: Callable[..., Any]
) -> None:
    config = serve_config()
    url, _ = start_app(config)
    alone = client.get(f"{url}/healthz")
    assert alone.status_code == 503 and alone.json() == {"ok": False, "redis": True, "workers": 0}
    start_workers(Path(os.environ["MAILPIPE_CONFIG"]), processes=1, threads=1)
    healthy = eventually(lambda: client.get(f"{url}/healthz"), lambda r: r.status_code == 200, timeout=60)
    assert healthy.status_code == 200 and healthy.json()["workers"] >= 1


def test_healthz_reports_an_unreachable_redis(
    serve_config: Callable[..., Config], start_app: Callable[..., Any], client: httpx.Client
) -> None:
    config = serve_config()
    dead = f"redis://127.0.0.1:{free_port()}/0"
    config = config.model_copy(update={"redis": config.redis.model_copy(update={"url": dead})})
    url, _ = start_app(config)
    response = client.get(f"{url}/healthz")
    assert response.status_code == 503 and response.json() == {"ok": False, "redis": False, "workers": None}


def test_metrics_are_served_in_prometheus_text_format(
    serve_config: Callable[..., Config], start_app: Callable[..., Any], client: httpx.Client
) -> None:
    url, _ = start_app(serve_config())
    client.post(f"{url}/webhooks/nobody", content=b"{}")
    response = client.get(f"{url}/metrics/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    assert 'mailpipe_webhook_requests_total{outcome="unknown_provider",provider="unknown"}' in response.text
    assert "mailpipe_feedback_events_total" in response.text and "mailpipe_ingest_events_total" in response.text


def test_an_unknown_provider_is_404_and_a_provider_without_keys_is_401(
    serve_config: Callable[..., Config], start_app: Callable[..., Any], client: httpx.Client
) -> None:
    url, _ = start_app(serve_config())
    assert client.post(f"{url}/webhooks/nobody", content=b"[]").status_code == 404
    for provider in ("sendgrid", "mailgun", "ses", "postmark"):
        response = client.post(f"{url}/webhooks/{provider}", content=b"[]")
        assert response.status_code == 401, provider
        assert response.json() == {"detail": "webhook not authentic"}


def test_a_missing_webhook_secret_stops_the_config_and_the_app_from_starting(
    serve_config: Callable[..., Config], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.errors import ConfigError
    from pipeline.http.app import create_app

    table = '\n[webhooks.mailgun]\nsigning_key = "env:TEST_WEBHOOK_KEY_GONE"\n'
    with pytest.raises(ConfigError, match=r"webhooks\.mailgun\.signing_key"):
        serve_config(table)  # config check refuses it already
    monkeypatch.setenv("TEST_WEBHOOK_KEY_GONE", "key-1")
    config = serve_config(table)
    monkeypatch.delenv("TEST_WEBHOOK_KEY_GONE")  # gone between loading and serving
    with pytest.raises(ConfigError, match=r"webhooks\.mailgun\.signing_key"):
        create_app(config)


def test_the_serve_command_starts_uvicorn_on_the_given_port(serve_config: Callable[..., Config], tmp_path: Path) -> None:
    serve_config()
    port = free_port()
    script = "import typer\nfrom pipeline.cli import serve\napp = typer.Typer()\nserve.register(app)\napp()\n"
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-c", script, "--config", os.environ["MAILPIPE_CONFIG"], "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        assert wait_for_port("127.0.0.1", port, timeout=30), (tmp_path / "serve.log").read_text()
        response = httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=10)
        assert response.status_code == 200 and "/v1/events" in response.json()["paths"]
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def test_docs_openapi_json_is_the_schema_the_app_serves() -> None:
    checked_in = openapi.DOC.read_text(encoding="utf-8")
    assert checked_in == openapi.render(), "docs/openapi.json is stale: run `python -m pipeline.http.openapi`"
    schema = json.loads(checked_in)
    assert set(schema["paths"]) == {
        "/v1/events",
        "/v1/events/{event_id}",
        "/webhooks/{provider}",
        "/webhooks/{provider}/{path_token}",
        "/u/{token}",
        "/c/{token}",
        "/o/{token}",
        "/healthz",
        "/v1/events/retry",
        "/v1/oauth/callback",
        "/v1/tenants",
        "/v1/tenants/{tenant}",
        "/v1/tenants/{tenant}/accounts",
        "/v1/tenants/{tenant}/accounts/{name}",
        "/v1/tenants/{tenant}/accounts/{name}/activate",
        "/v1/tenants/{tenant}/accounts/{name}/oauth/start",
        "/v1/tenants/{tenant}/accounts/{name}/pause",
        "/v1/tenants/{tenant}/accounts/{name}/resume",
        "/v1/tenants/{tenant}/accounts/{name}/verify",
        "/v1/tenants/{tenant}/audit",
        "/v1/tenants/{tenant}/keys",
        "/v1/tenants/{tenant}/keys/{key_id}",
        "/v1/tenants/{tenant}/routes",
        "/v1/tenants/{tenant}/suppressions",
        "/v1/tenants/{tenant}/suppressions/import",
        "/v1/tenants/{tenant}/suppressions/{address}",
    }


def test_the_ingest_schema_example_is_a_valid_lead_event() -> None:
    from pipeline.models import parse_event

    example = openapi.schema()["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"]["example"]
    assert parse_event(example).event_id == "crm-48213"
