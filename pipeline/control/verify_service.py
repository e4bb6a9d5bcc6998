"""Verify-on-save and ``POST …/verify``: the existing step-by-step check, behind the SSRF guard and a per-tenant limit.

The account is built from tenant input with the password as a literal, never as a secret
reference: a tenant sending ``file:/etc/shadow`` as a password must not make us read that file.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import pluggy
import redis
from pydantic import SecretStr

from pipeline.config import AccountConfig
from pipeline.control.errors import TooManyRequests
from pipeline.control.hostguard import HostPolicy, HostRefused
from pipeline.control.schemas import StepOut, VerifyReport
from pipeline.secrets import SecretRef
from pipeline.smtp.verify import DEFAULT_TIMEOUT, Report, verify_account


class LiteralSecret(SecretRef):
    """A secret given as a value: never read as ``env:``/``file:`` whatever it starts with."""

    __slots__ = ()

    @property
    def kind(self) -> str:
        return "literal"

    def _lookup(self) -> SecretStr:
        return SecretStr(self._ref)


class VerifyLimiter:
    """At most ``per_minute`` verifications per tenant per minute: shared through Redis when given one."""

    def __init__(self, per_minute: int, client: redis.Redis | None = None, clock: Any = time.time) -> None:
        self.per_minute = per_minute
        self.client = client
        self.clock = clock
        self._local: dict[int, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, tenant_id: int, slug: str) -> None:
        now = self.clock()
        if self.client is not None:
            window = int(now // 60)
            key = f"mailpipe:{slug}:control:verify:{window}"
            count = int(self.client.incr(key))
            if count == 1:
                self.client.expire(key, 120)
            if count > self.per_minute:
                raise TooManyRequests(
                    "too many verifications for this tenant; try again in a minute", retry_after=60 - int(now % 60)
                )
            return
        with self._lock:
            seen = self._local.setdefault(tenant_id, deque())
            while seen and seen[0] <= now - 60:
                seen.popleft()
            if len(seen) >= self.per_minute:
                raise TooManyRequests(
                    "too many verifications for this tenant; try again in a minute", retry_after=int(60 - (now - seen[0])) + 1
                )
            seen.append(now)


@dataclass
class Verifier:
    hosts: HostPolicy
    pm: pluggy.PluginManager
    limiter: VerifyLimiter = field(default_factory=lambda: VerifyLimiter(10))
    timeout: float = DEFAULT_TIMEOUT
    ca_file: str | None = None  # extra CA trusted for tenant servers (local relays, tests)

    def check(
        self, account: AccountConfig, host: str, port: int, *, tenant_id: int, slug: str, send_test: str | None = None
    ) -> VerifyReport:
        """Rate limit, guard the endpoint (DNS now, and every address again as it connects), then verify."""
        self.limiter.hit(tenant_id, slug)
        self.hosts.check_host(host, port)
        if self.ca_file and account.ca_file is None:
            account = account.model_copy(update={"ca_file": self.ca_file})

        def address_allowed(address: str) -> str | None:
            try:
                self.hosts.check_address(address)
            except HostRefused as exc:
                return exc.detail
            return None

        report = asyncio.run(
            verify_account(account, pm=self.pm, send_test=send_test, timeout=self.timeout, address_check=address_allowed)
        )
        return to_out(report)


def to_out(report: Report) -> VerifyReport:
    out = _out(report)
    out._rotated_refresh_token = report.rotated_refresh_token
    return out


def _out(report: Report) -> VerifyReport:
    return VerifyReport(
        ok=report.ok,
        account=report.account,
        endpoint=report.endpoint,
        steps=[
            StepOut(
                step=str(s.step),
                ok=s.ok,
                detail=s.detail,
                reply=s.reply,
                elapsed_ms=None if s.elapsed is None else round(s.elapsed * 1000, 1),
            )
            for s in report.steps
        ],
        hints=report.hints,
    )
