"""An SMTP server (aiosmtpd, STARTTLS) that accepts only AUTH XOAUTH2, checking each bearer token at the
fake provider's introspection endpoint. A refused token gets Google's answer: a ``334`` challenge with
a base64 JSON error, then ``535 5.7.8`` once the client sends its empty line."""

from __future__ import annotations

import base64
import json
import ssl
import threading
from dataclasses import dataclass
from typing import Any

import httpx
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session
from fake_provider import FakeProvider

from pipeline.smtp.devsmtp import TLSFiles
from pipeline.smtp.netutil import free_port


@dataclass
class Received:
    user: str
    sender: str
    recipients: list[str]


class XOAuth2SMTP:
    def __init__(self, provider: FakeProvider, tls_files: TLSFiles) -> None:
        self.provider = provider
        self.tls_files = tls_files
        self.port = free_port()
        self.received: list[Received] = []
        self.accepted_logins = 0
        self.rejected_logins = 0
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    def start(self) -> XOAuth2SMTP:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.tls_files.cert_file, self.tls_files.key_file)
        self._controller = Controller(
            _Handler(self),
            hostname="127.0.0.1",
            port=self.port,
            server_hostname="xoauth2.localhost",
            tls_context=context,
            require_starttls=True,
            auth_required=True,
            auth_require_tls=True,
            auth_exclude_mechanism=["LOGIN", "PLAIN"],
            ready_timeout=10,
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()


class _Handler:
    def __init__(self, server: XOAuth2SMTP) -> None:
        self.server = server

    async def auth_XOAUTH2(self, smtp: SMTP, args: list[str]) -> AuthResult:
        if len(args) > 1:
            raw = base64.b64decode(args[1])
        else:
            answer = await smtp.challenge_auth("")
            raw = answer if isinstance(answer, bytes) else b""
        fields = dict(part.split("=", 1) for part in raw.decode().split("\x01") if "=" in part)
        user, token = fields.get("user", ""), fields.get("auth", "").removeprefix("Bearer ")
        async with httpx.AsyncClient(trust_env=False) as client:
            answer_: dict[str, Any] = (await client.post(self.server.provider.introspect_url, data={"token": token})).json()
        if answer_.get("active") and answer_.get("username") == user:
            with self.server._lock:
                self.server.accepted_logins += 1
            return AuthResult(success=True, auth_data=user)
        with self.server._lock:
            self.server.rejected_logins += 1
        error = json.dumps({"status": "401", "schemes": "bearer", "scope": "https://mail.google.com/"}).encode()
        await smtp.challenge_auth(base64.b64encode(error), encode_to_b64=False)
        return AuthResult(success=False, handled=False, message="535 5.7.8 Username and Password not accepted.")

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        with self.server._lock:
            self.server.received.append(Received(str(session.auth_data), envelope.mail_from or "", list(envelope.rcpt_tos)))
        return "250 2.0.0 OK queued"
