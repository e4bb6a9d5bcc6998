"""Fixtures for the OAuth tests: the fake provider, an XOAUTH2-only SMTP server, and a config using both."""

from __future__ import annotations

import base64
import os
import secrets
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parent))

from connect_testbed import ADMIN, MAILBOX, MASTER_ENV, PLATFORM, STATE_SECRET_ENV, Deployment
from fake_provider import CLIENT_ID, CLIENT_SECRET, FakeProvider
from testbed import SMTP_USERS, account_toml, database_deployment_toml
from xoauth2_smtp import XOAuth2SMTP

from pipeline.config import load_config
from pipeline.control.build import control_context
from pipeline.http.control import routers
from pipeline.http.control.oauth import ConnectService
from pipeline.smtp.devsmtp import DevSMTPServer, TLSFiles


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    server = FakeProvider(lifetime=3600).start()
    yield server
    server.stop()


@pytest.fixture
def xoauth2_smtp(provider: FakeProvider, tls_files: TLSFiles) -> Iterator[XOAuth2SMTP]:
    server = XOAuth2SMTP(provider, tls_files).start()
    yield server
    server.stop()


def oauth_account_toml(name: str, port: int, ca_file: str, token_url: str, *, provider: str = "generic") -> str:
    return f"""
[[accounts]]
name = "{name}"
host = "127.0.0.1"
port = {port}
security = "starttls"
from_email = "{MAILBOX}"
ca_file = "{ca_file}"
local_hostname = "test.localhost"
timeout = 5
auth_method = "xoauth2"
oauth.provider = "{provider}"
oauth.client_id = "{CLIENT_ID}"
oauth.client_secret = "env:TEST_PW_OAUTH_CLIENT_SECRET"
oauth.refresh_token = "env:TEST_PW_OAUTH_REFRESH_TOKEN"
oauth.token_url = "{token_url}"
limits = {{ per_second = 500 }}
"""


@pytest.fixture
def oauth_env(provider: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> str:
    """The refresh token of a consented mailbox, in the environment the account refers to."""
    refresh_token = provider.grant(MAILBOX)
    monkeypatch.setenv("TEST_PW_OAUTH_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("TEST_PW_OAUTH_REFRESH_TOKEN", refresh_token)
    return refresh_token


@pytest.fixture
def write_oauth_config(
    write_config: Callable[..., Path],
    provider: FakeProvider,
    xoauth2_smtp: XOAuth2SMTP,
    smtp_server: DevSMTPServer,
    tls_files: TLSFiles,
    oauth_env: str,
) -> Callable[..., Path]:
    """Accounts: ``google-a`` (XOAUTH2) and alpha/beta/gamma (passwords); route ``mailbox`` lists ``accounts``."""

    def write(accounts: tuple[str, ...] = ("google-a",), extra: str = "") -> Path:
        password_accounts = "".join(account_toml(n, smtp_server.ports["starttls"], tls_files.ca_file) for n in SMTP_USERS)
        route = ", ".join(f'"{a}"' for a in accounts)
        return write_config(
            accounts=oauth_account_toml("google-a", xoauth2_smtp.port, tls_files.ca_file, provider.token_url) + password_accounts,
            routes=f'\n[[routes]]\nname = "mailbox"\nmatch = {{ list = "mailbox" }}\naccounts = [{route}]\n',
            default="gamma",
            extra=extra,
        )

    return write


@pytest.fixture
def deployment(
    tmp_path: Path,
    redis_url: str,
    pg_url: str,
    tls_files: TLSFiles,
    provider: FakeProvider,
    xoauth2_smtp: XOAuth2SMTP,
    smtp_server: DevSMTPServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Deployment]:
    monkeypatch.setenv(MASTER_ENV, base64.urlsafe_b64encode(os.urandom(32)).decode())
    monkeypatch.setenv(STATE_SECRET_ENV, secrets.token_urlsafe(32))
    monkeypatch.setenv("TEST_PW_OAUTH_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("TEST_MAILPIPE_ADMIN", ADMIN)
    (tmp_path / "templates").mkdir(exist_ok=True)
    ports = sorted({xoauth2_smtp.port, smtp_server.ports["starttls"]})
    path = tmp_path / "mailpipe.toml"
    oauth = f"""
[oauth]
state_secret = "env:{STATE_SECRET_ENV}"
return_origins = ["{PLATFORM}"]

[oauth.google]
client_id = "{CLIENT_ID}"
client_secret = "env:TEST_PW_OAUTH_CLIENT_SECRET"
redirect_url = "http://testserver/v1/oauth/callback"
authorize_url = "{provider.authorize_url}"
token_url = "{provider.token_url}"
"""
    toml = database_deployment_toml(redis_url, pg_url, tls_files.ca_file, ports, MASTER_ENV, "TEST_MAILPIPE_ADMIN", oauth)
    path.write_text(toml)
    monkeypatch.setenv("MAILPIPE_CONFIG", str(path))
    config = load_config(path)
    control = control_context(config)
    assert control is not None
    client = redis.Redis.from_url(redis_url)
    app = FastAPI()
    for router in routers():
        app.include_router(router)
    app.state.control = control
    app.state.oauth_connect = service = ConnectService.from_config(config, client)
    with TestClient(app) as http:
        yield Deployment(path, config, http, service)
    control.engine.dispose()
    client.close()
