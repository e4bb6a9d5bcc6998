"""Helpers for provider-plugin tests, as fixtures: a fresh plugin manager, accounts, routed messages,
and dev SMTP servers that fail the way a provider does."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import AccountConfig, Config, parse_config
from pipeline.models import LeadEvent, RenderedMessage, RoutedMessage
from pipeline.plugin_host.manager import LoadOptions, MailpipePluginManager, build_plugin_manager, preset_for
from pipeline.plugin_host.presets import ProviderPreset
from pipeline.smtp.devsmtp import DataResponder, DevSMTPServer, TLSFiles
from pipeline.smtp.mime import build_message
from pipeline.smtp.netutil import free_port
from pipeline.smtp.verify import Report, connection_hints, verify

SERVER_USER = "right-user"
SERVER_PASSWORD = "right-password"


@pytest.fixture(scope="session")
def pm() -> MailpipePluginManager:
    """Built-ins only: no entry points or drop-ins from the test machine's environment."""
    return build_plugin_manager(LoadOptions(load=frozenset()))


class Kit:
    def __init__(self, pm: MailpipePluginManager, tls_files: TLSFiles) -> None:
        self.pm = pm
        self.tls_files = tls_files
        self.servers: list[DevSMTPServer] = []

    # accounts and messages
    def account(self, **fields: Any) -> AccountConfig:
        fields.setdefault("name", "acct")
        fields.setdefault("from_email", "sales@acme.example")
        return AccountConfig.model_validate(fields)

    def preset(self, account: AccountConfig) -> ProviderPreset:
        found = preset_for(account, self.pm)
        assert found is not None
        return found

    def routed(self, account: AccountConfig, *, event_id: str = "ev-1", tenant: str = "default", **event: Any) -> RoutedMessage:
        lead = LeadEvent.model_validate(
            {"event_id": event_id, "tenant": tenant, "to": "lead@example.com", "subject": "Hi", "text": "Hello", **event}
        )
        rendered = RenderedMessage(event=lead, subject="Hi", text="Hello", message_id="<m1@acme.example>")
        return RoutedMessage(
            message=rendered,
            account=account.name,
            route="default",
            from_addr=account.from_email,
            from_name=account.from_name,
            reply_to=account.reply_to,
            envelope_from=account.envelope_from or account.from_email,
            first_attempt_at=time.time(),
        )

    def prepared(self, account: AccountConfig, routed: RoutedMessage | None = None, **event: Any) -> RoutedMessage:
        """A routed message after every plugin's ``mailpipe_prepare_message``."""
        routed = routed or self.routed(account, **event)
        self.pm.hook.mailpipe_prepare_message(account=account, message=routed)
        return routed

    @staticmethod
    def wire(routed: RoutedMessage) -> bytes:
        return build_message(routed, max_bytes=1_000_000)

    def hints(self, account: AccountConfig, error: str) -> list[str]:
        return connection_hints(self.pm, account, error)

    @staticmethod
    def config(text: str, tmp_path: Path) -> Config:
        """Parse a config whose state store is an unused port (never the machine's Redis on 6379)."""
        broker = f'[broker]\nurl = "redis://127.0.0.1:{free_port()}/0"\n'
        return parse_config(broker + text, tmp_path / "mailpipe.toml")

    # servers failing like providers do
    def server(
        self,
        *,
        auth_reply: str = "535 5.7.8 Authentication credentials invalid",
        data_reply: str | None = None,
        mode: str = "starttls",
    ) -> DevSMTPServer:
        responder: DataResponder | None = (lambda envelope, server: data_reply) if data_reply else None
        server = DevSMTPServer(
            tls_files=self.tls_files, users={SERVER_USER: SERVER_PASSWORD}, auth_reply=auth_reply, data_responder=responder
        )
        server.start(mode)
        self.servers.append(server)
        return server

    def verify_on(
        self, server: DevSMTPServer, *, mode: str = "starttls", send_test: str | None = None, timeout: float = 5.0, **fields: Any
    ) -> Report:
        """Verify an account of some provider whose host is overridden to point at ``server``."""
        fields.setdefault("username", SERVER_USER)
        fields.setdefault("password", SERVER_PASSWORD)
        account = self.account(
            host="127.0.0.1",
            port=server.ports[mode],
            security="tls" if mode == "tls" else "starttls",
            ca_file=self.tls_files.ca_file,
            local_hostname="test.localhost",
            **fields,
        )
        return verify(account, pm=self.pm, send_test=send_test, timeout=timeout)

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


@pytest.fixture
def kit(pm: MailpipePluginManager, tls_files: TLSFiles) -> Iterator[Kit]:
    helpers = Kit(pm, tls_files)
    yield helpers
    helpers.stop()
