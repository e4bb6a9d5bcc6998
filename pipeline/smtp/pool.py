"""Pooled SMTP sessions per account per worker process (docs/architecture.md: "Sending").

Sessions are reused across messages, reopened on error and closed when idle. Every failure is
turned into a SendReply (code + text, or a transport error kind); only two refusals raise, both
before any message text is sent: `Superseded` (the ledger gate said another attempt owns the
event) and `SmtpUtf8Unsupported` (a non-ASCII address and a server without SMTPUTF8).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiosmtplib

from pipeline.config import ResolvedAccount
from pipeline.config.oauth import AuthMethod
from pipeline.errors import MailpipeError
from pipeline.models import SendReply, TransportError
from pipeline.oauth import sasl
from pipeline.oauth.errors import OAuthError, TokenEndpointUnavailable
from pipeline.oauth.tokens import TokenSource
from pipeline.plugin_host.presets import Security

IDLE_SECONDS = 30.0
DataGate = Callable[[], Awaitable[bool]]


class Superseded(MailpipeError):
    """The ledger gate refused DATA: another attempt now owns this event. Nothing was sent."""


class SmtpUtf8Unsupported(MailpipeError):
    """The address needs SMTPUTF8 (non-ASCII local part) and the server does not offer it."""


_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")


def split_reply(code: int | None, text: str) -> tuple[str | None, str]:
    match = _ENHANCED.match(text or "")
    return (match.group(0).strip() if match else None), (text or "").strip()


def tls_context(account: ResolvedAccount) -> ssl.SSLContext:
    if not account.verify_tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=account.ca_file)


@dataclass
class _Session:
    client: aiosmtplib.SMTP
    last_used: float


class _Phase(Exception):
    """A transport failure with the step it happened at."""

    def __init__(self, kind: TransportError, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code


class AccountPool:
    def __init__(
        self,
        account: ResolvedAccount,
        *,
        tokens: TokenSource | None = None,
        tenant: str = "default",
        budget: SessionBudget | None = None,
    ) -> None:
        self.account = account
        self.tokens = tokens  # access tokens for auth_method = "xoauth2"
        self.tenant = tenant
        self.idle: list[_Session] = []
        self.slots = asyncio.Semaphore(account.pool_size)
        self.budget = budget or SessionBudget(account.pool_size)
        self.retired = False  # replaced by a pool with the account's new settings: sessions close on release
        self._tls = tls_context(account) if account.security != Security.NONE else None

    async def _open(self) -> aiosmtplib.SMTP:
        account = self.account
        client = aiosmtplib.SMTP(
            hostname=account.host,
            port=account.port,
            use_tls=account.security == Security.TLS,
            start_tls=account.security == Security.STARTTLS,
            tls_context=self._tls,
            timeout=account.timeout,
            local_hostname=account.local_hostname,
        )
        try:
            await client.connect()
        except aiosmtplib.SMTPConnectTimeoutError as exc:
            raise _Phase(TransportError.TIMEOUT, f"connect timed out: {exc}") from None
        except ssl.SSLError as exc:
            raise _Phase(TransportError.TLS, f"TLS handshake failed: {exc.reason or exc}") from None
        except aiosmtplib.SMTPResponseException as exc:
            raise _Phase(TransportError.CONNECT, f"{exc.code} {exc.message}", exc.code) from None
        except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPServerDisconnected, OSError) as exc:
            kind = TransportError.TLS if "SSL" in str(exc) or "TLS" in str(exc) else TransportError.CONNECT
            raise _Phase(kind, f"connect failed: {exc}") from None
        except aiosmtplib.SMTPTimeoutError as exc:
            raise _Phase(TransportError.TIMEOUT, f"timed out during greeting: {exc}") from None
        except aiosmtplib.SMTPException as exc:
            raise _Phase(TransportError.TLS if "TLS" in str(exc) else TransportError.PROTOCOL, str(exc)) from None
        if account.auth_method == AuthMethod.XOAUTH2:
            await self._login_xoauth2(client)
        elif account.username and account.password is not None:
            if account.security == Security.NONE and not account.allow_plaintext_auth:
                client.close()
                raise _Phase(TransportError.AUTH, "refusing AUTH over an unencrypted connection (set allow_plaintext_auth)")
            try:
                await client.login(account.username, account.password.get_secret_value())
            except aiosmtplib.SMTPAuthenticationError as exc:
                client.close()
                raise _Phase(TransportError.AUTH, f"{exc.code} {exc.message}", exc.code) from None
            except aiosmtplib.SMTPException as exc:
                client.close()
                raise _Phase(TransportError.AUTH, str(exc)) from None
        return client

    async def _login_xoauth2(self, client: aiosmtplib.SMTP) -> None:
        account = self.account
        if account.security == Security.NONE and not account.allow_plaintext_auth:
            client.close()
            raise _Phase(TransportError.AUTH, "refusing AUTH over an unencrypted connection (set allow_plaintext_auth)")
        if self.tokens is None:
            client.close()
            raise _Phase(TransportError.AUTH, "oauth: this process has no token source for XOAUTH2 accounts")
        try:
            await sasl.login(client, account, self.tokens, tenant=self.tenant)
        except TokenEndpointUnavailable as exc:
            client.close()  # transient: the message waits and retries with back-off, the account is not paused
            raise _Phase(TransportError.CONNECT, f"oauth: {exc}") from None
        except OAuthError as exc:
            client.close()
            raise _Phase(TransportError.AUTH, f"oauth: {exc}") from None
        except aiosmtplib.SMTPAuthenticationError as exc:
            client.close()
            raise _Phase(TransportError.AUTH, f"{exc.code} {exc.message}", exc.code) from None
        except aiosmtplib.SMTPException as exc:
            client.close()
            raise _Phase(TransportError.AUTH, str(exc)) from None

    async def _acquire(self) -> tuple[aiosmtplib.SMTP, bool]:
        now = time.monotonic()
        while self.idle:
            session = self.idle.pop()
            if now - session.last_used < IDLE_SECONDS and session.client.is_connected:
                return session.client, True
            session.client.close()
        self.budget.make_room()  # the cap holds open sockets, not only sends in progress
        return await self._open(), False

    def _release(self, client: aiosmtplib.SMTP) -> None:
        if self.retired:
            client.close()
            return
        self.idle.append(_Session(client, time.monotonic()))

    async def send(
        self, sender: str, recipient: str, data: bytes, *, smtputf8: bool = False, before_data: DataGate | None = None
    ) -> SendReply:
        """One transaction. `before_data` is awaited just before DATA; False aborts (Superseded)."""
        started = time.monotonic()
        async with self.budget.active, self.slots:
            reply = await self._send_once(sender, recipient, data, smtputf8, before_data, allow_retry=True)
        self.budget.make_room()
        reply.elapsed = round(time.monotonic() - started, 6)
        return reply

    async def _send_once(
        self, sender: str, recipient: str, data: bytes, smtputf8: bool, before_data: DataGate | None, *, allow_retry: bool
    ) -> SendReply:
        name = self.account.name
        try:
            client, reused = await self._acquire()
        except _Phase as exc:
            return SendReply(account=name, code=exc.code, text=str(exc), error=exc.kind)
        options, encoding = (["SMTPUTF8"], "utf-8") if smtputf8 else ([], "ascii")
        phase = "mail"
        try:
            if smtputf8:
                if client.is_ehlo_or_helo_needed:
                    await client.ehlo()
                if not client.supports_extension("smtputf8"):
                    self._release(client)
                    raise SmtpUtf8Unsupported(f"account {name}: the address is not ASCII and the server does not offer SMTPUTF8")
            await client.mail(sender, options=options, encoding=encoding)
            phase = "rcpt"
            await client.rcpt(recipient, encoding=encoding)
            phase = "data"
            if before_data is not None:
                await self._gate(client, before_data)
            response = await client.data(data)
        except aiosmtplib.SMTPServerDisconnected as exc:
            client.close()
            if reused and phase == "mail" and allow_retry:
                # A pooled session the server closed while idle: nothing was sent, open a fresh one.
                return await self._send_once(sender, recipient, data, smtputf8, before_data, allow_retry=False)
            return SendReply(account=name, text=f"connection dropped at {phase}: {exc}", error=TransportError.DROPPED)
        except (aiosmtplib.SMTPTimeoutError, TimeoutError) as exc:
            client.close()
            return SendReply(account=name, text=f"timed out at {phase}: {exc}", error=TransportError.TIMEOUT)
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code < 0:
                client.close()
                return SendReply(account=name, text=f"unreadable reply at {phase}: {exc.message}", error=TransportError.PROTOCOL)
            enhanced, text = split_reply(exc.code, exc.message)
            if exc.code == 421:
                client.close()
            else:
                await self._reset(client)
            return SendReply(account=name, code=exc.code, enhanced=enhanced, text=text)
        except (aiosmtplib.SMTPException, OSError) as exc:
            client.close()
            return SendReply(account=name, text=f"error at {phase}: {exc}", error=TransportError.PROTOCOL)
        self._release(client)
        enhanced, text = split_reply(response.code, response.message)
        return SendReply(account=name, code=response.code, enhanced=enhanced, text=text)

    async def _gate(self, client: aiosmtplib.SMTP, before_data: DataGate) -> None:
        try:
            allowed = await before_data()
        except BaseException:
            client.close()
            raise
        if not allowed:
            await self._reset(client)
            raise Superseded("another attempt owns this event's send ledger: DATA not sent")

    async def _reset(self, client: aiosmtplib.SMTP) -> None:
        try:
            await client.rset()
        except (aiosmtplib.SMTPException, OSError):
            client.close()
            return
        self._release(client)

    async def close(self, *, idle_for: float = 0.0) -> None:
        """QUIT sessions idle for at least `idle_for` seconds (all of them by default)."""
        now = time.monotonic()
        keep = [s for s in self.idle if now - s.last_used < idle_for]
        stale = [s for s in self.idle if now - s.last_used >= idle_for]
        self.idle = keep
        for session in stale:
            try:
                await session.client.quit()
            except (aiosmtplib.SMTPException, OSError):
                session.client.close()


class SessionBudget:
    """A cap on the SMTP sessions one worker process holds across all accounts (`[tenants] max_smtp_sessions`).

    Sessions in use never exceed `limit` (a send waits for a free one); after each send the idle
    sessions beyond what the cap leaves room for are closed, least recently used first — so many
    tenants mean more reconnects, never more sockets.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = asyncio.Semaphore(limit)
        self.pools: dict[str, AccountPool] = {}

    def resize(self, limit: int) -> None:
        if self.in_use:
            raise RuntimeError("the session cap is set before the first send")
        self.limit, self.active = limit, asyncio.Semaphore(limit)

    @property
    def in_use(self) -> int:
        return self.limit - self.active._value

    def open_sessions(self) -> int:
        return self.in_use + sum(len(pool.idle) for pool in self.pools.values())

    def make_room(self) -> None:
        """Before a new session opens: close least recently used idle ones so that open ≤ limit."""
        idle = sorted(
            ((session.last_used, pool, session) for pool in self.pools.values() for session in pool.idle),
            key=lambda item: item[0],
        )
        excess = self.in_use + len(idle) - self.limit
        for _, pool, session in idle[: max(0, excess)]:
            pool.idle.remove(session)
            session.client.close()


class Pools:
    """All account pools of one worker process; lives on the worker's event loop."""

    def __init__(self, tokens: TokenSource | None = None, *, max_sessions: int = 200) -> None:
        self.budget = SessionBudget(max_sessions)
        self.pools: dict[str, AccountPool] = self.budget.pools
        self.tokens = tokens  # set by the send runtime once it has its Redis client
        self._reaper: asyncio.Task[None] | None = None

    def get(self, account: ResolvedAccount) -> AccountPool:
        if self._reaper is None:
            self._reaper = asyncio.get_running_loop().create_task(self._reap_idle())
        pool = self.pools.get(account.name)
        if pool is None or pool.account != account:
            if pool is not None:  # the account changed (a new password, host, limits): its sessions go
                pool.retired = True
                asyncio.get_running_loop().create_task(pool.close())
            pool = self.pools[account.name] = AccountPool(account, tokens=self.tokens, budget=self.budget)
        return pool

    def open_sessions(self) -> int:
        return self.budget.open_sessions()

    async def _reap_idle(self) -> None:
        while True:
            await asyncio.sleep(IDLE_SECONDS / 3)
            for pool in list(self.pools.values()):
                await pool.close(idle_for=IDLE_SECONDS)

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None
        for pool in self.pools.values():
            await pool.close()
