"""Fixtures for the OAuth tests: the fake provider, an XOAUTH2-only SMTP server, and a config using both."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fake_provider import CLIENT_ID, CLIENT_SECRET, FakeProvider
from testbed import SMTP_USERS, account_toml
from xoauth2_smtp import XOAuth2SMTP

from pipeline.smtp.devsmtp import DevSMTPServer, TLSFiles

MAILBOX = "owner@mailbox.example"


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
