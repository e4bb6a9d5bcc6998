"""Tenants sending through their own accounts: real PostgreSQL registry, Redis, worker processes, SMTP servers."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from testbed import database_deployment_toml

from pipeline.config import load_config
from pipeline.control.build import control_context
from pipeline.http.control import routers
from pipeline.smtp.devsmtp import DevSMTPServer, TLSFiles

ADMIN = "tenant-tests-admin-token-0123456789"
MASTER_ENV = "TEST_PW_MAILPIPE_MASTER"  # TEST_PW_* variables reach the worker processes
USERS = {"acme-a": "pw-acme-a-123", "acme-b": "pw-acme-b-456", "globex": "pw-globex-789", "platform": "pw-platform-0"}


@dataclass
class Tenants:
    """An admin API client on the deployment's database, and helpers to set tenants up."""

    client: TestClient
    smtp: dict[str, DevSMTPServer]

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.client.request(method, path, headers={"Authorization": f"Bearer {ADMIN}"}, **kwargs)
        assert response.status_code < 300, (method, path, response.status_code, response.text)
        return response.json() if response.content else None

    def tenant(self, slug: str) -> None:
        self.call("PUT", f"/v1/tenants/{slug}", json={"display_name": slug.title()})

    def account(self, tenant: str, name: str, server: str, user: str, *, verify: bool = False, **extra: Any) -> None:
        body = {
            "name": name,
            "provider": "smtp",
            "host": "127.0.0.1",
            "port": self.smtp[server].ports["starttls"],
            "security": "starttls",
            "username": user,
            "password": USERS[user],
            "from_email": f"{name}@{tenant}.example",
            "from_name": f"{tenant.title()} {name}",
            **extra,
        }
        self.call("POST", f"/v1/tenants/{tenant}/accounts?verify={'true' if verify else 'false'}", json=body)


@pytest.fixture
def smtp_pair(tls_files: TLSFiles) -> Iterator[dict[str, DevSMTPServer]]:
    """Two SMTP servers standing for two providers."""
    servers = {name: DevSMTPServer(tls_files=tls_files, users=dict(USERS)) for name in ("one", "two")}
    for server in servers.values():
        server.start("starttls")
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture
def tenant_config(
    tmp_path: Path,
    redis_url: str,
    pg_url: str,
    tls_files: TLSFiles,
    smtp_pair: dict[str, DevSMTPServer],
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., Path]:
    ports = sorted(server.ports["starttls"] for server in smtp_pair.values())
    monkeypatch.setenv(MASTER_ENV, base64.urlsafe_b64encode(os.urandom(32)).decode())
    templates = tmp_path / "templates"
    templates.mkdir(exist_ok=True)

    def write(extra: str = "") -> Path:
        path = tmp_path / "mailpipe.toml"
        toml = database_deployment_toml(redis_url, pg_url, tls_files.ca_file, ports, MASTER_ENV, "TEST_MAILPIPE_ADMIN", extra)
        path.write_text(toml)
        monkeypatch.setenv("MAILPIPE_CONFIG", str(path))
        monkeypatch.setenv("TEST_MAILPIPE_ADMIN", ADMIN)
        return path

    return write


@pytest.fixture
def tenants(tenant_config: Callable[..., Path], smtp_pair: dict[str, DevSMTPServer]) -> Iterator[Tenants]:
    path = tenant_config()
    config = load_config(path)
    control = control_context(config)
    assert control is not None
    app = FastAPI()
    for router in routers():
        app.include_router(router)
    app.state.control = control
    with TestClient(app) as client:
        yield Tenants(client, smtp_pair)
    control.engine.dispose()
