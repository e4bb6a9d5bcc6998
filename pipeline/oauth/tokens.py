"""Valid access tokens for XOAUTH2 accounts, refreshed once for every worker that needs one.

``TokenSource.token(account)`` answers from the shared cache; on a miss one process takes the
account's refresh lock and calls the token endpoint while the others wait for its result (in this
process on an asyncio lock, across processes by polling the cache). A token a server refused is
passed back as ``refused`` and dropped, so the next call refreshes, once, whoever asks first.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis

from pipeline.config.resolve import ResolvedAccount, ResolvedOAuth
from pipeline.oauth import endpoint, instruments
from pipeline.oauth.cache import Failure, TokenCache
from pipeline.oauth.errors import GrantRefused, OAuthError, TokenEndpointUnavailable
from pipeline.oauth.revocation import report_revoked

Refresher = Callable[[ResolvedOAuth], Awaitable[endpoint.AccessToken]]

POLL_SECONDS = 0.05
REVOKED_MEMORY = 86_400.0  # a revoked grant is not tried again for a day (a reconnect brings a new grant)
REFUSED_MEMORY = 300.0  # other refusals (client id or secret wrong): retried every five minutes
UNAVAILABLE_MEMORY = 2.0  # waiters share the refresher's outage instead of each trying again at once


class TokenSource:
    def __init__(
        self,
        client: aioredis.Redis,
        *,
        timeout: float = endpoint.DEFAULT_TIMEOUT,
        attempts: int = 3,
        backoff: float = 0.5,
        refresher: Refresher | None = None,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.client = client
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self._refresh = refresher or (lambda grant: endpoint.refresh(grant, timeout=timeout))
        self._local: dict[tuple[str, str], asyncio.Lock] = {}

    @property
    def lock_seconds(self) -> float:
        """How long a refresher may hold the lock: every attempt timing out, plus the back-off between them."""
        return float(self.attempts * self.timeout + self.backoff * (2**self.attempts) + 1.0)

    async def token(self, account: ResolvedAccount, *, tenant: str = "default", refused: str | None = None) -> str:
        grant = account.oauth
        if grant is None:
            raise OAuthError(f"account {account.name} has no oauth grant")
        cache = TokenCache(self.client, tenant, account.name, grant)
        if refused is not None:
            await cache.drop(refused)
        lock = self._local.setdefault((tenant, account.name), asyncio.Lock())
        async with lock:
            return await self._shared(cache, account, grant, tenant)

    async def _shared(self, cache: TokenCache, account: ResolvedAccount, grant: ResolvedOAuth, tenant: str) -> str:
        deadline = time.monotonic() + self.lock_seconds + 1.0
        while True:
            cached = await cache.get()
            if cached is not None:
                return cached.value
            failure = await cache.failure()
            if failure is not None:
                raise _error(failure)
            owner = await cache.lock(self.lock_seconds)
            if owner is not None:
                try:
                    cached = await cache.get()  # the previous refresher may have finished between our reads
                    if cached is not None:
                        return cached.value
                    return await self._refresh_now(cache, account, grant, tenant)
                finally:
                    await cache.unlock(owner)
            if time.monotonic() > deadline:
                raise TokenEndpointUnavailable(f"no access token for {account.name}: another worker's refresh did not finish")
            await asyncio.sleep(POLL_SECONDS)

    async def _refresh_now(self, cache: TokenCache, account: ResolvedAccount, grant: ResolvedOAuth, tenant: str) -> str:
        provider = grant.provider.value
        for attempt in range(1, self.attempts + 1):
            try:
                token = await self._refresh(grant)
            except TokenEndpointUnavailable as exc:
                instruments.refreshed(account.name, provider, "unavailable")
                if attempt == self.attempts:
                    await cache.fail(Failure("unavailable", str(exc)), UNAVAILABLE_MEMORY)
                    raise
                await asyncio.sleep(self.backoff * (2 ** (attempt - 1)))
                continue
            except GrantRefused as exc:
                instruments.refreshed(account.name, provider, "refused")
                first = await cache.fail(Failure("refused", exc.error), REVOKED_MEMORY if exc.revoked else REFUSED_MEMORY)
                if exc.revoked and first:
                    await report_revoked(self.client, tenant=tenant, account=account.name, provider=provider, error=exc.error)
                raise
            instruments.refreshed(account.name, provider, "ok")
            await cache.clear_failure()
            await cache.put(token)
            return token.value
        raise AssertionError("unreachable: the last attempt returns or raises")


def _error(failure: Failure) -> OAuthError:
    if failure.kind == "refused":
        return GrantRefused(failure.error)
    return TokenEndpointUnavailable(f"token endpoint unavailable moments ago ({failure.error}); retry later")
