"""Pooled SMTP sessions per account per worker process (docs/architecture.md: "Sending").

Sessions are reused across messages, reopened on error and closed when idle. Every failure is
turned into a SendReply (code + text, or a transport error kind); only two refusals raise, both
before any message text is sent: `Superseded` (the ledger gate said another attempt owns the
event) and `SmtpUtf8Unsupported` (a non-ASCII address and a server without SMTPUTF8).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import hmac
import os
import re
import ssl
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiosmtplib
from aiosmtplib.protocol import SMTPProtocol

from pipeline.config import ResolvedAccount
from pipeline.config.oauth import AuthMethod
from pipeline.errors import MailpipeError
from pipeline.models import SendReply, TransportError
from pipeline.oauth import sasl
from pipeline.oauth.errors import OAuthError, TokenEndpointUnavailable
from pipeline.oauth.tokens import TokenSource
from pipeline.plugin_host.presets import Security

IDLE_SECONDS = 30.0
# The longest a new session waits for closed ones' sockets to go: a TLS session's close waits for the
# server's close_notify, which the event loop itself gives up on after 30 s.
CLOSE_WAIT_SECONDS = 30.0
POOLS_PER_SESSION = 4  # account pool objects kept per session of the cap (see Pools._forget_unused)
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
    return _tls_context(account.verify_tls, account.ca_file)


@functools.lru_cache(maxsize=64)
def _tls_context(verify: bool, ca_file: str | None) -> ssl.SSLContext:
    """Shared by every account with the same trust settings: loading the CA store costs milliseconds."""
    if not verify:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=ca_file)


_DIGEST_KEY = os.urandom(32)  # this process's own: a connection key never reveals the secret it covers


def connection_key(account: ResolvedAccount) -> tuple[object, ...]:
    """What makes two accounts' SMTP sessions interchangeable: the same server, TLS and login.

    Accounts with identical connection settings and credentials (a platform relay shared by many
    tenants, say) reuse each other's idle sessions — MAIL FROM is per message, and whoever holds
    these credentials may log in with them anyway. A new password gives a new key, so sessions
    opened with the old one are never used again. XOAUTH2 sessions carry the account's own token:
    never shared.
    """
    password = account.password.get_secret_value() if account.password is not None else ""
    digest = hmac.new(_DIGEST_KEY, password.encode(), hashlib.sha256).digest()
    owner = account.name if account.auth_method == AuthMethod.XOAUTH2 else None
    return (
        account.host,
        account.port,
        account.security,
        account.verify_tls,
        account.ca_file,
        account.local_hostname,
        account.timeout,
        account.allow_plaintext_auth,
        account.auth_method,
        account.username,
        digest,
        owner,
    )


@dataclass(eq=False)
class _Session:
    client: aiosmtplib.SMTP
    last_used: float
    key: tuple[object, ...] = ()


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
        self.key = connection_key(account)
        self.tokens = tokens  # access tokens for auth_method = "xoauth2"
        self.tenant = tenant
        self.slots = asyncio.Semaphore(account.pool_size)
        self.budget = budget or SessionBudget(account.pool_size)
        self.retired = False  # replaced by a pool with the account's new credentials: sessions close on release
        self._tls = tls_context(account) if account.security != Security.NONE else None

    @property
    def idle(self) -> list[_Session]:
        """Idle sessions this account may use (its own and those of accounts with the same connection key)."""
        return self.budget.idle_of(self.key)

    @property
    def busy(self) -> bool:
        return self.slots._value < self.account.pool_size

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
                self.budget.discard(client)
                raise _Phase(TransportError.AUTH, "refusing AUTH over an unencrypted connection (set allow_plaintext_auth)")
            try:
                await client.login(account.username, account.password.get_secret_value())
            except aiosmtplib.SMTPAuthenticationError as exc:
                self.budget.discard(client)
                raise _Phase(TransportError.AUTH, f"{exc.code} {exc.message}", exc.code) from None
            except aiosmtplib.SMTPException as exc:
                self.budget.discard(client)
                raise _Phase(TransportError.AUTH, str(exc)) from None
        return client

    async def _login_xoauth2(self, client: aiosmtplib.SMTP) -> None:
        account = self.account
        if account.security == Security.NONE and not account.allow_plaintext_auth:
            self.budget.discard(client)
            raise _Phase(TransportError.AUTH, "refusing AUTH over an unencrypted connection (set allow_plaintext_auth)")
        if self.tokens is None:
            self.budget.discard(client)
            raise _Phase(TransportError.AUTH, "oauth: this process has no token source for XOAUTH2 accounts")
        try:
            await sasl.login(client, account, self.tokens, tenant=self.tenant)
        except TokenEndpointUnavailable as exc:
            self.budget.discard(client)  # transient: the message waits and retries with back-off, the account is not paused
            raise _Phase(TransportError.CONNECT, f"oauth: {exc}") from None
        except OAuthError as exc:
            self.budget.discard(client)
            raise _Phase(TransportError.AUTH, f"oauth: {exc}") from None
        except aiosmtplib.SMTPAuthenticationError as exc:
            self.budget.discard(client)
            raise _Phase(TransportError.AUTH, f"{exc.code} {exc.message}", exc.code) from None
        except aiosmtplib.SMTPException as exc:
            self.budget.discard(client)
            raise _Phase(TransportError.AUTH, str(exc)) from None

    async def _acquire(self) -> tuple[aiosmtplib.SMTP, bool]:
        now = time.monotonic()
        while (session := self.budget.take_idle(self.key)) is not None:
            if now - session.last_used < IDLE_SECONDS and session.client.is_connected:
                return session.client, True
            self.budget.discard(session.client)
        await self.budget.room()  # the cap holds open sockets, not only sends in progress
        return await self._open(), False

    def _release(self, client: aiosmtplib.SMTP) -> None:
        if self.retired:
            self.budget.discard(client)
            return
        self.budget.put_idle(_Session(client, time.monotonic(), self.key))

    async def send(
        self, sender: str, recipient: str, data: bytes, *, smtputf8: bool = False, before_data: DataGate | None = None
    ) -> SendReply:
        """One transaction. `before_data` is awaited just before DATA; False aborts (Superseded)."""
        started = time.monotonic()
        # The account's own slot first: a send queued behind its account's pool_size must not count
        # against the process-wide cap, or idle sessions get closed to make room for sends that
        # cannot start yet (every burst then reconnected almost every message).
        async with self.slots, self.budget.active:
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
            self.budget.discard(client)
            if reused and phase == "mail" and allow_retry:
                # A pooled session the server closed while idle: nothing was sent, open a fresh one.
                return await self._send_once(sender, recipient, data, smtputf8, before_data, allow_retry=False)
            return SendReply(account=name, text=f"connection dropped at {phase}: {exc}", error=TransportError.DROPPED)
        except (aiosmtplib.SMTPTimeoutError, TimeoutError) as exc:
            self.budget.discard(client)
            return SendReply(account=name, text=f"timed out at {phase}: {exc}", error=TransportError.TIMEOUT)
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code < 0:
                self.budget.discard(client)
                return SendReply(account=name, text=f"unreadable reply at {phase}: {exc.message}", error=TransportError.PROTOCOL)
            enhanced, text = split_reply(exc.code, exc.message)
            if exc.code == 421:
                self.budget.discard(client)
            else:
                await self._reset(client)
            return SendReply(account=name, code=exc.code, enhanced=enhanced, text=text)
        except (aiosmtplib.SMTPException, OSError) as exc:
            self.budget.discard(client)
            return SendReply(account=name, text=f"error at {phase}: {exc}", error=TransportError.PROTOCOL)
        self._release(client)
        enhanced, text = split_reply(response.code, response.message)
        return SendReply(account=name, code=response.code, enhanced=enhanced, text=text)

    async def _gate(self, client: aiosmtplib.SMTP, before_data: DataGate) -> None:
        try:
            allowed = await before_data()
        except BaseException:
            self.budget.discard(client)
            raise
        if not allowed:
            await self._reset(client)
            raise Superseded("another attempt owns this event's send ledger: DATA not sent")

    async def _reset(self, client: aiosmtplib.SMTP) -> None:
        try:
            await client.rset()
        except (aiosmtplib.SMTPException, OSError):
            self.budget.discard(client)
            return
        self._release(client)

    async def close(self, *, idle_for: float = 0.0) -> None:
        """QUIT this connection key's sessions idle for at least `idle_for` seconds (all of them by default)."""
        await self.budget.quit_idle(idle_for, key=self.key)


class SessionBudget:
    """A cap on the SMTP sessions one worker process holds across all accounts (`[tenants] max_smtp_sessions`).

    Sessions in use never exceed `limit` (a send waits for a free one); before a new session opens,
    the idle sessions beyond what the cap leaves room for are closed, least recently used first — so
    many tenants mean more reconnects, never more sockets. Idle sessions are kept by connection key
    (see `connection_key`) in one LRU order, so taking, returning and evicting one is O(1) however many
    accounts the process has seen.

    A closed session's socket is not gone yet: the event loop closes it on its next turn (after a TLS
    close_notify exchange, for TLS), and the kernel had already completed a new connection by then.
    So a session counts until its protocol has seen `connection_lost`, and a new one waits for that.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = asyncio.Semaphore(limit)
        self.pools: dict[str, AccountPool] = {}
        self._idle: OrderedDict[_Session, None] = OrderedDict()  # oldest first
        self._by_key: dict[tuple[object, ...], list[_Session]] = {}
        self._quitting: dict[_Session, None] = {}  # taken out of the idle ones, QUIT not answered yet
        self._closing: list[SMTPProtocol] = []  # closed by us, socket not closed yet
        self._waiting = 0  # sends in `room` waiting for closed sessions' sockets to go

    def resize(self, limit: int) -> None:
        if self.in_use:
            raise RuntimeError("the session cap is set before the first send")
        self.limit, self.active = limit, asyncio.Semaphore(limit)

    @property
    def in_use(self) -> int:
        return self.limit - self.active._value

    def open_sessions(self) -> int:
        return self.in_use + len(self._idle) + len(self._quitting) + self.closing()

    def closing(self) -> int:
        """Sessions closed whose socket is still open (their transport has not reported the close)."""
        if self._closing:
            self._closing = [protocol for protocol in self._closing if protocol.transport is not None]
        return len(self._closing)

    def discard(self, client: aiosmtplib.SMTP) -> None:
        """Close a session; it still counts until its socket is really closed."""
        protocol = client.protocol  # close() forgets it
        client.close()
        self._closed(protocol)

    def _closed(self, protocol: SMTPProtocol | None) -> None:
        if protocol is not None and protocol.transport is not None:
            self._closing.append(protocol)

    def idle_of(self, key: tuple[object, ...]) -> list[_Session]:
        return list(self._by_key.get(key, ()))

    def take_idle(self, key: tuple[object, ...]) -> _Session | None:
        """The most recently used idle session for this key, if any."""
        stack = self._by_key.get(key)
        if not stack:
            return None
        session = stack.pop()
        if not stack:
            del self._by_key[key]
        del self._idle[session]
        return session

    def put_idle(self, session: _Session) -> None:
        self._by_key.setdefault(session.key, []).append(session)
        self._idle[session] = None

    def _drop(self, session: _Session) -> None:
        del self._idle[session]
        stack = self._by_key[session.key]
        stack.remove(session)
        if not stack:
            del self._by_key[session.key]

    def make_room(self) -> None:
        """Before a new session opens: close least recently used idle ones so that open ≤ limit, and
        if that is not enough, sessions still waiting for their QUIT's answer (they are going anyway)."""
        excess = self.open_sessions() - self.limit
        while excess > 0 and self._idle:
            session = next(iter(self._idle))
            self._drop(session)
            self.discard(session.client)
            excess -= 1
        while excess > 0 and self._quitting:
            session = next(iter(self._quitting))
            del self._quitting[session]
            self.discard(session.client)
            excess -= 1

    async def room(self) -> None:
        """Make room for one new session (the caller holds its place in `active`): close idle and
        quitting sessions as `make_room` does, then wait for the sockets of closed ones to go."""
        self.make_room()
        pause = 0.0
        deadline = time.monotonic() + CLOSE_WAIT_SECONDS
        while self._promised() > self.limit and time.monotonic() < deadline:
            # Sends waiting here hold no socket yet: counting them (as `in_use` does) while the sends
            # that finish keep closing sessions for them would keep every one of them waiting.
            self._waiting += 1
            try:
                await asyncio.sleep(pause)  # the loop's next turn closes what was closed on this one
            finally:
                self._waiting -= 1
            pause = min(max(pause * 2, 0.001), 0.05)
            self.make_room()

    def _promised(self) -> int:
        """Sockets open or about to open (sends past `room`), this one's included."""
        return self.in_use - self._waiting + len(self._idle) + len(self._quitting) + self.closing()

    async def quit_idle(self, idle_for: float = 0.0, *, key: tuple[object, ...] | None = None) -> None:
        """QUIT idle sessions unused for at least `idle_for` seconds (of one key, or all). Until its
        QUIT is answered a session's socket is still open, so it still counts against the cap."""
        now = time.monotonic()
        stale = [s for s in self._idle if now - s.last_used >= idle_for and (key is None or s.key == key)]
        for session in stale:
            self._drop(session)
            self._quitting[session] = None
        for session in stale:
            if session not in self._quitting:
                continue  # closed meanwhile to make room for a send
            protocol = session.client.protocol
            try:
                await session.client.quit()
            except (aiosmtplib.SMTPException, OSError):
                session.client.close()
            finally:
                if self._quitting.pop(session, False) is None:  # not closed meanwhile by make_room
                    self._closed(protocol)


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
        if pool is not None and (pool.account is account or pool.account == account):
            self.pools[account.name] = self.pools.pop(account.name)  # most recently used last
            return pool
        replacement = AccountPool(account, tokens=self.tokens, budget=self.budget)
        if pool is not None and pool.key != replacement.key:
            # A new password, host or TLS setting: sessions opened with the old ones go.
            pool.retired = True
            asyncio.get_running_loop().create_task(pool.close())
        self.pools.pop(account.name, None)
        self.pools[account.name] = replacement
        self._forget_unused()
        return replacement

    def _forget_unused(self) -> None:
        """Keep pool objects of a bounded number of accounts: the least recently used with no send in
        progress go (their idle sessions stay with the budget, by connection key, until reused or evicted)."""
        excess = len(self.pools) - POOLS_PER_SESSION * self.budget.limit
        if excess <= 0:
            return
        unused = []
        for name, pool in self.pools.items():  # oldest first
            if not pool.busy:
                unused.append(name)
                if len(unused) == excess:
                    break
        for name in unused:
            del self.pools[name]

    def open_sessions(self) -> int:
        return self.budget.open_sessions()

    async def _reap_idle(self) -> None:
        while True:
            await asyncio.sleep(IDLE_SECONDS / 3)
            await self.budget.quit_idle(IDLE_SECONDS)

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None
        await self.budget.quit_idle()
