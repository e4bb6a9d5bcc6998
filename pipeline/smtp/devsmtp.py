"""A local SMTP server (aiosmtpd) with STARTTLS, implicit TLS and AUTH that records what it gets.

Used by `mailpipe demo` and by the test suite; replies can be scripted per recipient so a test
can make the server answer like a provider does (5.1.1, 454 throttling, 535 auth failure).
"""

from __future__ import annotations

import contextlib
import logging
import mailbox
import ssl
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from pipeline.smtp.netutil import free_port

# aiosmtpd sets its own deprecated attribute during AUTH; the warning is not about our code.
warnings.filterwarnings("ignore", message="Session.login_data is deprecated")
logging.getLogger("mail.log").addFilter(lambda record: "login_data is deprecated" not in record.getMessage())
warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")

RcptResponder = Callable[[str, "DevSMTPServer"], str | None]
DataResponder = Callable[[Envelope, "DevSMTPServer"], str | None]


@dataclass
class ReceivedMessage:
    at: float
    mail_from: str
    rcpt_to: list[str]
    data: bytes
    auth_user: str | None
    port: int

    @property
    def message(self) -> EmailMessage:
        return message_from_bytes(self.data, policy=policy.default)

    def header(self, name: str) -> str | None:
        value = self.message[name]
        return None if value is None else str(value)


@dataclass
class TLSFiles:
    ca_file: str
    cert_file: str
    key_file: str


def make_tls_files(directory: Path, hostnames: tuple[str, ...] = ("localhost", "127.0.0.1")) -> TLSFiles:
    """A private CA and a server certificate for it, made now (trustme)."""
    import trustme

    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    cert = ca.issue_cert(*hostnames)
    files = TLSFiles(str(directory / "ca.pem"), str(directory / "server.pem"), str(directory / "server.key"))
    ca.cert_pem.write_to_path(files.ca_file)
    cert.private_key_pem.write_to_path(files.key_file)
    with open(files.cert_file, "wb") as out:
        for blob in cert.cert_chain_pems:
            out.write(blob.bytes())
    return files


class _Handler:
    def __init__(self, server: DevSMTPServer, port_ref: list[int]) -> None:
        self.server = server
        self.port_ref = port_ref

    async def handle_RCPT(self, smtp: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]) -> str:
        reply = self.server.rcpt_responder(address, self.server) if self.server.rcpt_responder else None
        if reply and not reply.startswith("2"):
            return reply
        envelope.rcpt_tos.append(address)
        return reply or "250 OK"

    async def handle_QUIT(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        with self.server._lock:
            self.server.quits += 1
        return "221 Bye"

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        reply = self.server.data_responder(envelope, self.server) if self.server.data_responder else None
        if reply and not reply.startswith("2"):
            return reply
        data = envelope.original_content or b""
        user = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        self.server.store(
            ReceivedMessage(
                at=time.time(),
                mail_from=envelope.mail_from or "",
                rcpt_to=list(envelope.rcpt_tos),
                data=data,
                auth_user=user,
                port=self.port_ref[0],
            )
        )
        return reply or "250 2.0.0 Message accepted for delivery"


class DevSMTPServer:
    """One or more listeners (starttls / tls / none) sharing one record of received mail."""

    def __init__(
        self,
        *,
        tls_files: TLSFiles | None = None,
        users: dict[str, str] | None = None,
        maildir: Path | None = None,
        rcpt_responder: RcptResponder | None = None,
        data_responder: DataResponder | None = None,
        auth_reply: str = "535 5.7.8 Authentication credentials invalid",
        host: str = "127.0.0.1",
    ) -> None:
        self.tls_files = tls_files
        self.users = users
        self.maildir = mailbox.Maildir(str(maildir), create=True) if maildir else None
        self.maildir_path = maildir
        self.rcpt_responder = rcpt_responder
        self.data_responder = data_responder
        self.auth_reply = auth_reply
        self.host = host
        self.received: list[ReceivedMessage] = []
        self.auth_failures = 0
        self.quits = 0  # sessions that ended with QUIT (a client closing politely)
        self._lock = threading.Lock()
        self._controllers: dict[str, Controller] = {}
        self.ports: dict[str, int] = {}

    def store(self, message: ReceivedMessage) -> None:
        with self._lock:
            self.received.append(message)
            if self.maildir is not None:
                self.maildir.add(message.data)

    def clear(self) -> None:
        with self._lock:
            self.received.clear()

    def snapshot(self) -> list[ReceivedMessage]:
        with self._lock:
            return list(self.received)

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any) -> AuthResult:
        if self.users is None:
            return AuthResult(success=True, auth_data=auth_data)
        if isinstance(auth_data, LoginPassword):
            user, password = auth_data.login.decode(), auth_data.password.decode()
            if self.users.get(user) == password:
                return AuthResult(success=True, auth_data=auth_data)
        with self._lock:
            self.auth_failures += 1
        return AuthResult(success=False, handled=False, message=self.auth_reply)

    def _server_context(self) -> ssl.SSLContext:
        assert self.tls_files is not None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.tls_files.cert_file, self.tls_files.key_file)
        return context

    def start(self, mode: str = "starttls", port: int | None = None) -> int:
        """Start a listener; mode is starttls, tls (implicit) or none. Returns its port."""
        port = port or free_port()
        port_ref = [port]
        kwargs: dict[str, Any] = {
            "hostname": self.host,
            "port": port,
            "server_hostname": "devsmtp.localhost",
            "authenticator": self._authenticate,
            "auth_required": self.users is not None,
            "auth_require_tls": mode == "starttls",  # implicit TLS is already encrypted
            "ready_timeout": 10,
            "data_size_limit": 40_000_000,
        }
        if mode == "starttls":
            kwargs["tls_context"] = self._server_context()
            kwargs["require_starttls"] = True
        elif mode == "tls":
            kwargs["ssl_context"] = self._server_context()
        controller = Controller(_Handler(self, port_ref), **kwargs)
        controller.start()
        self._controllers[mode] = controller
        self.ports[mode] = port
        return port

    def stop(self) -> None:
        for controller in self._controllers.values():
            with contextlib.suppress(Exception):  # a controller that never started has nothing to stop
                controller.stop()
        self._controllers.clear()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[ReceivedMessage]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.snapshot()
            if len(got) >= count:
                return got
            time.sleep(0.05)
        return self.snapshot()


def scripted_rcpt(rules: dict[str, str]) -> RcptResponder:
    """Reply by local-part prefix: {"bounce511": "550 5.1.1 ..."} answers for bounce511*@…"""

    def responder(address: str, server: DevSMTPServer) -> str | None:
        local = address.split("@", 1)[0].lower()
        for prefix, reply in rules.items():
            if local.startswith(prefix):
                return reply
        return None

    return responder
