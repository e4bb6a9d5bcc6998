"""Valid access tokens for XOAUTH2 accounts, refreshed once for every worker that needs one.

``TokenSource.token(account)`` answers from the shared cache; on a miss one process takes the
account's refresh lock and calls the token endpoint while the others wait for its result (in this
process on an asyncio lock, across processes by polling the cache). A token a server refused is
passed back as ``refused`` and dropped, so the next call refreshes, once, whoever asks first.

Every refresh starts from the account's newest refresh token (:mod:`pipeline.oauth.rotation`); a
rotated one the endpoint hands back is saved in Redis before its access token is used, then given to
the :class:`GrantKeeper` (the registry seals it into PostgreSQL). A revoked grant goes to the keeper
too, beside the Redis pause and the tenant's event, so the account shows ``auth_failed`` everywhere.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import redis.asyncio as aioredis
import structlog

from pipeline.config.resolve import ResolvedAccount, ResolvedOAuth
from pipeline.oauth import endpoint, instruments
from pipeline.oauth.cache import Failure, TokenCache
from pipeline.oauth.errors import GrantRefused, OAuthError, TokenEndpointUnavailable
from pipeline.oauth.revocation import report_revoked
from pipeline.oauth.rotation import RotatedTokens, with_refresh_token

log = structlog.get_logger("mailpipe.oauth")

Refresher = Callable[[ResolvedOAuth], Awaitable[endpoint.AccessToken]]

POLL_SECONDS = 0.05
REVOKED_MEMORY = 86_400.0  # a revoked grant is not tried again for a day (a reconnect brings a new grant)
REFUSED_MEMORY = 300.0  # other refusals (client id or secret wrong): retried every five minutes
UNAVAILABLE_MEMORY = 2.0  # waiters share the refresher's outage instead of each trying again at once


class GrantKeeper(Protocol):
    """Where grants outlive Redis (the registry): told of a rotated refresh token and of a revoked grant.

    Called on the worker's event loop; an implementation that blocks hands itself to a thread. Its
    errors are logged, never raised into a send: Redis already holds what matters.
    """

    async def rotated(self, tenant: str, account: str, configured: ResolvedOAuth, used: ResolvedOAuth, new: str) -> None:
        """``used`` (``configured``, or its newest rotation) was answered with the refresh token ``new``."""

    async def revoked(self, tenant: str, account: str, configured: ResolvedOAuth, used: ResolvedOAuth, error: str) -> None:
        """The token endpoint refused ``used`` for good (``invalid_grant``)."""


class TokenSource:
    def __init__(
        self,
        client: aioredis.Redis,
        *,
        timeout: float = endpoint.DEFAULT_TIMEOUT,
        attempts: int = 3,
        backoff: float = 0.5,
        refresher: Refresher | None = None,
        keeper: GrantKeeper | None = None,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.client = client
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self._refresh = refresher or (lambda grant: endpoint.refresh(grant, timeout=timeout))
        self.keeper = keeper
        self._local: dict[tuple[str, str], asyncio.Lock] = {}

    @property
    def lock_seconds(self) -> float:
        """How long a refresher may hold the lock: every attempt timing out, plus the back-off between them."""
        return float(self.attempts * self.timeout + self.backoff * (2**self.attempts) + 1.0)

    async def token(self, account: ResolvedAccount, *, tenant: str = "default", refused: str | None = None) -> str:
        grant = account.oauth
        if grant is None:
            raise OAuthError(f"account {account.name} has no oauth grant")
        return await self.grant_token(account.name, grant, tenant=tenant, refused=refused)

    async def grant_token(self, name: str, grant: ResolvedOAuth, *, tenant: str = "default", refused: str | None = None) -> str:
        """A valid access token for account ``name`` (its runtime reference) holding the configured ``grant``."""
        rotated = RotatedTokens(self.client, tenant, name, grant)
        if refused is not None:
            await TokenCache(self.client, tenant, name, await rotated.effective()).drop(refused)
        lock = self._local.setdefault((tenant, name), asyncio.Lock())
        async with lock:
            return await self._shared(rotated, name, tenant)

    async def _shared(self, rotated: RotatedTokens, name: str, tenant: str) -> str:
        deadline = time.monotonic() + self.lock_seconds + 1.0
        while True:
            grant = await rotated.effective()
            cache = TokenCache(self.client, tenant, name, grant)
            cached = await cache.get()
            if cached is not None:
                return cached.value
            failure = await cache.failure()
            if failure is not None:
                raise _error(failure)
            owner = await cache.lock(self.lock_seconds)
            if owner is not None:
                try:
                    grant = await rotated.effective()  # the previous refresher may have rotated it meanwhile
                    cache = TokenCache(self.client, tenant, name, grant)
                    cached = await cache.get()  # ... or finished between our reads
                    if cached is not None:
                        return cached.value
                    return await self._refresh_now(cache, rotated, name, grant, tenant)
                finally:
                    await cache.unlock(owner)
            if time.monotonic() > deadline:
                raise TokenEndpointUnavailable(f"no access token for {name}: another worker's refresh did not finish")
            await asyncio.sleep(POLL_SECONDS)

    async def _refresh_now(self, cache: TokenCache, rotated: RotatedTokens, name: str, grant: ResolvedOAuth, tenant: str) -> str:
        provider = grant.provider.value
        for attempt in range(1, self.attempts + 1):
            try:
                token = await self._refresh(grant)
            except TokenEndpointUnavailable as exc:
                instruments.refreshed(name, provider, "unavailable")
                if attempt == self.attempts:
                    await cache.fail(Failure("unavailable", str(exc)), UNAVAILABLE_MEMORY)
                    raise
                await asyncio.sleep(self.backoff * (2 ** (attempt - 1)))
                continue
            except GrantRefused as exc:
                instruments.refreshed(name, provider, "refused")
                first = await cache.fail(Failure("refused", exc.error), REVOKED_MEMORY if exc.revoked else REFUSED_MEMORY)
                if exc.revoked and first:
                    await report_revoked(self.client, tenant=tenant, account=name, provider=provider, error=exc.error)
                    await self._keep_revoked(tenant, name, rotated.configured, grant, exc.error)
                raise
            instruments.refreshed(name, provider, "ok")
            await cache.clear_failure()
            new_refresh = token.refresh_token
            if new_refresh and new_refresh != grant.refresh_token.get_secret_value():
                # The old refresh token is dead from now on: keep the new one before anything else.
                await rotated.save(new_refresh)
                instruments.rotated(name, provider)
                cache = TokenCache(self.client, tenant, name, with_refresh_token(grant, new_refresh))
                await cache.put(token)
                await self._keep_rotated(tenant, name, rotated.configured, grant, new_refresh)
            else:
                await cache.put(token)
            return token.value
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _keep_rotated(
        self, tenant: str, name: str, configured: ResolvedOAuth, used: ResolvedOAuth, new_refresh: str
    ) -> None:
        if self.keeper is not None:
            try:
                await self.keeper.rotated(tenant, name, configured, used, new_refresh)
            except Exception as exc:  # Redis holds the new token; the registry gets the next rotation
                log.warning("oauth_keeper_failed", account=name, what="rotated", error=_short(exc))

    async def _keep_revoked(self, tenant: str, name: str, configured: ResolvedOAuth, used: ResolvedOAuth, error: str) -> None:
        if self.keeper is not None:
            try:
                await self.keeper.revoked(tenant, name, configured, used, error)
            except Exception as exc:  # the Redis pause and the tenant's event stand; the registry row lags
                log.warning("oauth_keeper_failed", account=name, what="revoked", error=_short(exc))


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:200]}"


def _error(failure: Failure) -> OAuthError:
    if failure.kind == "refused":
        return GrantRefused(failure.error)
    return TokenEndpointUnavailable(f"token endpoint unavailable moments ago ({failure.error}); retry later")
