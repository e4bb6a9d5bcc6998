"""The OAuth tests' shared names: the consenting mailbox, the platform's origin, and the deployment under test."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from pipeline.config import Config
from pipeline.http.control.oauth import ConnectService

MAILBOX = "owner@mailbox.example"
ADMIN = "oauth-tests-admin-token-0123456789"
MASTER_ENV = "TEST_PW_MAILPIPE_MASTER"  # TEST_PW_* variables reach worker processes
STATE_SECRET_ENV = "TEST_PW_OAUTH_STATE_SECRET"
PLATFORM = "http://platform.localhost:3000"  # the platform's origin, allow-listed for plain http


@dataclass
class Deployment:
    """A database-backed deployment with the fake provider as its Google OAuth app, and an admin API client."""

    path: Path
    config: Config
    client: TestClient
    service: ConnectService

    def call(self, method: str, path: str, *, token: str = ADMIN, expect: int | None = None, **kwargs: Any) -> Any:
        response = self.client.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs)
        if expect is None:
            assert response.status_code < 300, (method, path, response.status_code, response.text)
        else:
            assert response.status_code == expect, (method, path, response.status_code, response.text)
        return response.json() if response.content else None

    def account(self, tenant: str, name: str, port: int, from_email: str = MAILBOX, **extra: Any) -> None:
        """An account on the XOAUTH2 server with no credentials yet (the connect flow brings them)."""
        body = {
            "name": name,
            "provider": "gmail",
            "host": "127.0.0.1",
            "port": port,
            "security": "starttls",
            "from_email": from_email,
            "from_name": f"{tenant.title()} {name}",
            **extra,
        }
        self.call("PUT", f"/v1/tenants/{tenant}", json={"display_name": tenant.title()})
        self.call("POST", f"/v1/tenants/{tenant}/accounts?verify=false", json=body)

    def connect(self, tenant: str, name: str, return_url: str = f"{PLATFORM}/done?tab=mail") -> httpx.Response:
        """Start, let the fake provider consent (a real HTTP redirect), and follow it to our callback."""
        started = self.call("POST", f"/v1/tenants/{tenant}/accounts/{name}/oauth/start", json={"return_url": return_url})
        consent = httpx.get(started["authorization_url"], follow_redirects=False, trust_env=False)
        assert consent.status_code == 302, consent.text
        return self.client.get(consent.headers["location"], follow_redirects=False)
