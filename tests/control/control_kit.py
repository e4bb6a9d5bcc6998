"""Fixtures for the control-plane tests: a real database, a control context and an API client on it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine

from pipeline.config import load_config
from pipeline.control.context import ControlContext
from pipeline.control.crypto import Keyring, MasterKey
from pipeline.control.hostguard import HostPolicy
from pipeline.control.verify_service import Verifier, VerifyLimiter
from pipeline.http.app import create_app
from pipeline.http.control import routers
from pipeline.plugin_host.manager import LoadOptions, build_plugin_manager
from pipeline.smtp.devsmtp import TLSFiles

ADMIN_TOKEN = "admin-token-for-tests-0123456789"
INGEST_TOKEN = "ingest-token-for-tests-0123456789"
MASTER = MasterKey.from_bytes(b"m" * 32)


@pytest.fixture(scope="session")
def plugin_manager() -> Any:
    return build_plugin_manager(LoadOptions())


@pytest.fixture
def make_control(pg_engine: Engine, plugin_manager: Any, tls_files: TLSFiles) -> Callable[..., ControlContext]:
    def make(*, hosts: HostPolicy | None = None, keys: list[MasterKey] | None = None, per_minute: int = 100) -> ControlContext:
        verifier = Verifier(
            hosts=hosts or HostPolicy(),
            pm=plugin_manager,
            limiter=VerifyLimiter(per_minute),
            timeout=5,
            ca_file=tls_files.ca_file,
        )
        return ControlContext(
            engine=pg_engine, keyring=Keyring(keys or [MASTER]), verifier=verifier, admin_tokens=[SecretStr(ADMIN_TOKEN)]
        )

    return make


@pytest.fixture
def control(make_control: Callable[..., ControlContext]) -> ControlContext:
    return make_control()


def app_for(ctx: ControlContext) -> FastAPI:
    app = FastAPI()
    for router in routers():
        app.include_router(router)
    app.state.control = ctx
    return app


@dataclass
class Api:
    client: TestClient

    def call(self, method: str, path: str, token: str = ADMIN_TOKEN, headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
        return self.client.request(method, path, headers={"Authorization": f"Bearer {token}", **(headers or {})}, **kwargs)

    def tenant(self, slug: str) -> None:
        assert self.call("PUT", f"/v1/tenants/{slug}", json={"display_name": slug.title()}).status_code in (200, 201)

    def key(self, slug: str, scopes: tuple[str, ...] = ("events:write", "events:read", "accounts:manage")) -> str:
        response = self.call("POST", f"/v1/tenants/{slug}/keys", json={"name": "test", "scopes": list(scopes)})
        assert response.status_code == 201, response.text
        return str(response.json()["key"])


@pytest.fixture
def api(control: ControlContext) -> Iterator[Api]:
    with TestClient(app_for(control)) as client:
        yield Api(client)


def account_body(name: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "provider": "sendgrid",
        "password": f"SG.secret-of-{name}-0123456789abcdef",
        "from_email": f"{name}@acme.example",
        "from_name": "Acme",
    }
    body.update(fields)
    return body


@pytest.fixture
def full_api(
    control: ControlContext,
    write_config: Callable[..., Path],
    redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Api]:
    """The whole app (ingest on a private Redis, the control plane on the test database)."""
    monkeypatch.setenv("TEST_INGEST_TOKEN", INGEST_TOKEN)
    config = load_config(write_config(extra='[serve]\ningest_tokens = ["env:TEST_INGEST_TOKEN"]\n'))
    app = create_app(config, client=redis_client, with_control=False)
    app.state.control = control
    with TestClient(app) as client:
        yield Api(client)


def lead(event_id: str, **fields: Any) -> dict[str, Any]:
    return {"event_id": event_id, "to": f"{event_id}@receiver.example", "subject": "Hi", "text": "Hello", **fields}
