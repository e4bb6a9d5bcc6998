"""`accounts verify`: DNS → TCP → banner → EHLO → STARTTLS/TLS → AUTH (→ test send), each step timed.

On the first failure the check stops; the failing step, the server's exact reply and the plugins'
``mailpipe_connection_hints`` make the report. No stage code runs: this talks to the server only.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiosmtplib
import pluggy
import redis.asyncio as aioredis

from pipeline.config import AccountConfig, ResolvedAccount, resolve_account
from pipeline.config.oauth import AuthMethod
from pipeline.errors import MailpipeError
from pipeline.models import LeadEvent, RenderedMessage, RoutedMessage
from pipeline.oauth import endpoint as oauth_endpoint
from pipeline.oauth import sasl
from pipeline.oauth.errors import OAuthError
from pipeline.oauth.rotation import RotatedTokens
from pipeline.plugin_host.hints import Step
from pipeline.plugin_host.manager import get_plugin_manager, preset_for
from pipeline.plugin_host.presets import Security
from pipeline.smtp.mime import build_message, message_id_for
from pipeline.smtp.pool import tls_context

DEFAULT_TIMEOUT = 10.0
TOML_TENANT = "default"  # the runtime tenant of the TOML's accounts (pipeline.registry.refs, a layer above)
AddressCheck = Callable[[str], str | None]


@dataclass
class StepResult:
    step: Step
    ok: bool
    detail: str
    elapsed: float | None = None  # seconds; None when timed together with the row above
    reply: str | None = None  # the server's exact reply, when it gave one


@dataclass
class Report:
    account: str
    provider: str
    endpoint: str = "?"
    steps: list[StepResult] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)
    # An XOAUTH2 check's refresh may be answered with a new refresh token (the old one then dead): the caller keeps it.
    rotated_refresh_token: str | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.steps)

    @property
    def failure(self) -> StepResult | None:
        return next((s for s in self.steps if not s.ok), None)


class StepFailed(Exception):
    def __init__(self, detail: str, reply: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.reply = reply


def _cause(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def describe(exc: BaseException, timeout: float) -> tuple[str, str | None]:
    """An exception as (what happened, the server's exact reply or None)."""
    if isinstance(exc, StepFailed):
        return exc.detail, exc.reply
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        exc = exc.recipients[0]
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        reply = f"{exc.code} {exc.message}"
        return reply, reply
    cert = _cause(exc, ssl.SSLCertVerificationError)
    if isinstance(cert, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {cert.verify_message}", None
    tls = _cause(exc, ssl.SSLError)
    if tls is not None:
        return f"TLS handshake failed: {tls}", None
    if _cause(exc, TimeoutError) is not None:
        return f"timed out after {timeout:g}s", None
    if _cause(exc, ConnectionRefusedError) is not None:
        return "connection refused", None
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected):
        return f"the server closed the connection ({exc})", None
    return str(exc) or type(exc).__name__, None


class _Check:
    def __init__(
        self,
        account: AccountConfig,
        resolved: ResolvedAccount,
        timeout: float,
        report: Report,
        address_check: AddressCheck | None = None,
        rotation: RotatedTokens | None = None,
    ) -> None:
        self.address_check = address_check
        self.rotation = rotation
        self.account = account
        self.resolved = resolved
        self.timeout = timeout
        self.report = report
        self.addresses: list[tuple[int, int, int, str, tuple[object, ...]]] = []
        self.sock: socket.socket | None = None
        self.client: aiosmtplib.SMTP | None = None
        self.tls = tls_context(resolved) if resolved.security != Security.NONE else None

    @property
    def smtp(self) -> aiosmtplib.SMTP:
        if self.client is None:
            raise StepFailed("not connected")
        return self.client

    async def run(self, send_test: str | None, pm: pluggy.PluginManager) -> None:
        plan: list[tuple[Step, Callable[[], Awaitable[str]]]] = [(Step.DNS, self.dns), (Step.TCP, self.tcp)]
        plan.append((Step.TLS if self.resolved.security == Security.TLS else Step.BANNER, self.connect))
        plan.append((Step.EHLO, self.ehlo))
        if self.resolved.security == Security.STARTTLS:
            plan += [(Step.STARTTLS, self.starttls), (Step.EHLO, self.ehlo)]
        plan.append((Step.AUTH, self.auth))
        if send_test:
            plan.append((Step.SEND, lambda: self.send(send_test, pm)))
        try:
            for step, action in plan:
                if not await self._do(step, action):
                    break
        finally:
            await self._close()

    async def _do(self, step: Step, action: Callable[[], Awaitable[str]]) -> bool:
        start = time.perf_counter()
        extra = len(self.report.steps)
        try:
            detail = await action()
        except Exception as exc:  # every failure becomes a report row
            detail, reply = describe(exc, self.timeout)
            self.report.steps.insert(extra, StepResult(step, False, detail, time.perf_counter() - start, reply))
            return False
        self.report.steps.insert(extra, StepResult(step, True, detail, time.perf_counter() - start))
        return True

    def _note(self, step: Step, detail: str) -> None:
        self.report.steps.append(StepResult(step, True, detail))

    async def dns(self) -> str:
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(self.resolved.host, self.resolved.port, type=socket.SOCK_STREAM), self.timeout
            )
        except socket.gaierror as exc:
            raise StepFailed(f"{self.resolved.host} does not resolve ({exc.strerror})") from None
        self.addresses = [(f, t, p, c, tuple(a)) for f, t, p, c, a in infos]
        found = list(dict.fromkeys(str(a[4][0]) for a in self.addresses))
        return ", ".join(found[:4]) + (f" (+{len(found) - 4})" if len(found) > 4 else "")

    async def tcp(self) -> str:
        loop = asyncio.get_running_loop()
        errors = []
        for family, kind, proto, _, address in self.addresses:
            refused = self.address_check(str(address[0])) if self.address_check else None
            if refused:  # checked as we connect: the name may resolve differently than when it was saved
                errors.append(refused)
                continue
            sock = socket.socket(family, kind, proto)
            sock.setblocking(False)
            try:
                await asyncio.wait_for(loop.sock_connect(sock, address), self.timeout)
            except (OSError, TimeoutError) as exc:
                sock.close()
                errors.append(f"{address[0]}: {describe(exc, self.timeout)[0]}")
                continue
            self.sock = sock
            return f"connected to {address[0]} port {address[1]}"
        raise StepFailed("; ".join(errors) or "no address to connect to")

    async def connect(self) -> str:
        implicit = self.resolved.security == Security.TLS
        self.client = aiosmtplib.SMTP(
            hostname=self.resolved.host,
            sock=self.sock,
            use_tls=implicit,
            start_tls=False,
            tls_context=self.tls,
            local_hostname=self.resolved.local_hostname,
            timeout=self.timeout,
        )
        self.sock = None  # the client owns it now
        try:
            greeting = await self.client.connect()
        except aiosmtplib.SMTPConnectTimeoutError:
            raise StepFailed(f"no greeting within {self.timeout:g}s (timed out)") from None
        banner = f"{greeting.code} {greeting.message}"
        if not implicit:
            return banner
        self._note(Step.BANNER, banner)
        return self._tls_detail()

    def _tls_detail(self) -> str:
        ssl_object = self.smtp.get_transport_info("ssl_object")
        if ssl_object is None:
            return "encrypted"
        cipher = ssl_object.cipher()
        checked = "certificate verified" if self.resolved.verify_tls else "certificate NOT verified (verify_tls = false)"
        return f"{ssl_object.version()} {cipher[0] if cipher else ''}, {checked}".replace("  ", " ")

    async def ehlo(self) -> str:
        response = await self.smtp.ehlo()
        extensions = " · ".join(f"{k.upper()} {v}".strip() for k, v in self.smtp.esmtp_extensions.items())
        return f"{response.code} {extensions or response.message.splitlines()[0]}"

    async def starttls(self) -> str:
        if not self.smtp.supports_extension("starttls"):
            raise StepFailed("the server does not offer STARTTLS on this port")
        response = await self.smtp.starttls(server_hostname=self.resolved.host)
        return f"{response.code} {response.message} → {self._tls_detail()}"

    async def auth(self) -> str:
        if self.resolved.auth_method == AuthMethod.XOAUTH2:
            return await self.auth_xoauth2()
        username = self.resolved.username
        password = self.resolved.password.get_secret_value() if self.resolved.password else None
        if not username and not password:
            return "skipped: no username or password configured"
        if not username or not password:
            missing = "username" if not username else "password"
            raise StepFailed(f"{missing} is not configured while the other one is")
        encrypted = self.smtp.get_transport_info("sslcontext") is not None
        if not encrypted and not self.resolved.allow_plaintext_auth:
            raise StepFailed("refusing to send the password over an unencrypted connection (security = none)")
        if not self.smtp.supports_extension("auth"):
            raise StepFailed("the server offers no AUTH on this connection")
        response = await self.smtp.login(username, password)
        return f"{response.code} {response.message} (as {username})"

    async def auth_xoauth2(self) -> str:
        """A fresh access token straight from the token endpoint (no shared cache here), then AUTH XOAUTH2."""
        grant, username = self.resolved.oauth, self.resolved.username
        if grant is None or not username:
            raise StepFailed("auth_method is xoauth2 but the account has no oauth grant or username")
        encrypted = self.smtp.get_transport_info("sslcontext") is not None
        if not encrypted and not self.resolved.allow_plaintext_auth:
            raise StepFailed("refusing to send the access token over an unencrypted connection (security = none)")
        if self.rotation is not None:
            grant = await self.rotation.effective()  # a TOML account's rotated refresh token, kept in Redis
        try:
            token = await oauth_endpoint.refresh(grant, timeout=self.timeout)
        except OAuthError as exc:
            raise StepFailed(f"oauth: {exc}", reply=str(exc)) from None
        if token.refresh_token and token.refresh_token != grant.refresh_token.get_secret_value():
            self.report.rotated_refresh_token = token.refresh_token
            if self.rotation is not None:
                await self.rotation.save(token.refresh_token)
        response = await sasl.authenticate(self.smtp, username, token.value)
        return f"{response.code} {response.message} (XOAUTH2 as {username}, token from {grant.token_url})"

    async def send(self, address: str, pm: pluggy.PluginManager) -> str:
        routed = probe_message(self.account, address, pm)
        data = build_message(routed, max_bytes=self.resolved.max_message_bytes)
        _, message = await self.smtp.sendmail(routed.envelope_from, [address], data)
        return f"accepted for {address}: {message}"

    async def _close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        if self.client is not None and self.client.is_connected:
            try:
                await asyncio.wait_for(self.client.quit(), self.timeout)
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                self.client.close()


def probe_message(account: AccountConfig, address: str, pm: pluggy.PluginManager, tenant: str = "default") -> RoutedMessage:
    """A small message to ``address`` with the account's plugin quirks applied, as the route stage does."""
    event_id = f"verify-{uuid.uuid4().hex[:16]}"
    text = f"This is a test message from mailpipe, sent by `mailpipe accounts verify {account.name}`.\n"
    event = LeadEvent(event_id=event_id, tenant=tenant, to=address, subject="mailpipe test message", text=text)
    domain = account.from_email.rsplit("@", 1)[1]
    rendered = RenderedMessage(
        event=event, subject="mailpipe test message", text=text, message_id=message_id_for(tenant, event_id, domain)
    )
    routed = RoutedMessage(
        message=rendered,
        account=account.name,
        route="verify",
        from_addr=account.from_email,
        from_name=account.from_name,
        reply_to=account.reply_to,
        envelope_from=account.envelope_from or account.from_email,
        first_attempt_at=time.time(),
    )
    pm.hook.mailpipe_prepare_message(account=account, message=routed)
    return routed


def connection_hints(pm: pluggy.PluginManager, account: AccountConfig, error: str) -> list[str]:
    """Every plugin's hints for ``"<step>: <reply>"``, provider-specific first, duplicates dropped."""
    lines: list[str] = []
    for batch in pm.hook.mailpipe_connection_hints(account=account, error=error):
        for line in batch or ():
            if line not in lines:
                lines.append(line)
    return lines


async def verify_account(
    account: AccountConfig,
    *,
    pm: pluggy.PluginManager | None = None,
    send_test: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    address_check: AddressCheck | None = None,
    rotation_client: aioredis.Redis | None = None,
) -> Report:
    """``address_check`` may refuse a resolved address (why, or None) before any connection to it.

    ``rotation_client``: the Redis where a TOML XOAUTH2 account's rotated refresh token is kept (read
    before the check, a new rotation written back); without it a rotation is only on the report.
    """
    pm = pm or get_plugin_manager()
    report = Report(account=account.name, provider=account.provider)
    try:
        resolved = resolve_account(account, preset_for(account, pm))
    except MailpipeError as exc:
        report.steps.append(StepResult(Step.CONFIG, False, str(exc)))
    else:
        report.endpoint = f"{resolved.host}:{resolved.port} ({resolved.security})"
        rotation = None
        if rotation_client is not None and resolved.oauth is not None:
            rotation = RotatedTokens(rotation_client, TOML_TENANT, resolved.name, resolved.oauth)
        await _Check(account, resolved, timeout, report, address_check, rotation).run(send_test, pm)
    failure = report.failure
    if failure is not None:
        report.hints = connection_hints(pm, account, f"{failure.step}: {failure.reply or failure.detail}")
    return report


def verify(
    account: AccountConfig,
    *,
    pm: pluggy.PluginManager | None = None,
    send_test: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    redis_url: str | None = None,
) -> Report:
    """Blocking wrapper for the CLI; with ``redis_url`` an XOAUTH2 account's rotated refresh token is used and kept."""

    async def run() -> Report:
        if redis_url is None or account.auth_method != AuthMethod.XOAUTH2:
            return await verify_account(account, pm=pm, send_test=send_test, timeout=timeout)
        client = aioredis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=5)
        try:
            await client.ping()
        except aioredis.RedisError:
            await client.aclose()  # no Redis: check the configured grant as it is
            return await verify_account(account, pm=pm, send_test=send_test, timeout=timeout)
        try:
            return await verify_account(account, pm=pm, send_test=send_test, timeout=timeout, rotation_client=client)
        finally:
            await client.aclose()

    return asyncio.run(run())
