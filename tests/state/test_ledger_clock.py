"""Send-ledger leases are measured on the Redis server's clock, not on the worker's."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
import redis
import redis.asyncio as aioredis

from pipeline.state.ledger import Claim, SendLedger

LEASE = 0.5
HOUR = 3600.0
T = TypeVar("T")


def skewed(monkeypatch: pytest.MonkeyPatch, seconds: float) -> Callable[[Callable[[], Awaitable[T]]], Awaitable[T]]:
    """Run one ledger call as a worker whose wall clock is `seconds` off."""
    real = time.time

    async def call(action: Callable[[], Awaitable[T]]) -> T:
        monkeypatch.setattr(time, "time", lambda: real() + seconds)
        try:
            return await action()
        finally:
            monkeypatch.setattr(time, "time", real)

    return call


def test_a_worker_whose_clock_runs_ahead_cannot_take_over_a_running_lease(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario() -> None:
        client = aioredis.Redis.from_url(redis_url)
        holder = SendLedger(client, lease=LEASE, policy="resend")
        ahead = SendLedger(client, lease=LEASE, policy="resend")
        first = await holder.claim("default", "e1")
        assert first.claim == Claim.CLAIMED
        second = await skewed(monkeypatch, +HOUR)(lambda: ahead.claim("default", "e1"))
        assert second.claim == Claim.BUSY and 0 < second.retry_in <= LEASE
        assert await holder.commit("default", "e1", first.token)  # the holder still holds it
        await client.aclose()

    asyncio.run(scenario())


def test_a_worker_whose_clock_runs_ahead_or_behind_holds_its_lease_for_the_lease_and_no_longer(
    redis_url: str, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario(skew: float, event_id: str) -> None:
        client = aioredis.Redis.from_url(redis_url)
        skewed_worker = SendLedger(client, lease=LEASE, policy="resend")
        other = SendLedger(client, lease=LEASE, policy="resend")
        held = await skewed(monkeypatch, skew)(lambda: skewed_worker.claim("default", event_id))
        assert held.claim == Claim.CLAIMED
        assert (await other.claim("default", event_id)).claim == Claim.BUSY  # the lease holds, whatever the skew
        await asyncio.sleep(LEASE + 0.2)
        taken = await other.claim("default", event_id)
        assert taken.claim == Claim.CLAIMED  # …and ends after LEASE seconds, whatever the skew
        lost = await skewed(monkeypatch, skew)(lambda: skewed_worker.commit("default", event_id, held.token))
        assert lost is False  # the old holder must not send the text now
        await client.aclose()

    asyncio.run(scenario(+HOUR, "ahead"))
    asyncio.run(scenario(-HOUR, "behind"))
    at = float(redis_client.hget("mailpipe:default:ledger:behind", "at") or 0)
    seconds, micros = redis_client.time()
    assert abs(at - (seconds + micros / 1e6)) < 5  # stamped with Redis's time, not the skewed worker's
