"""Script calls coalesced per loop tick: one round trip, each caller its own result or error."""

from __future__ import annotations

import asyncio

import pytest
import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from pipeline.state.lua_scripts import LuaScript
from pipeline.state.script_batcher import ScriptBatcher

INCR_BY = LuaScript.from_source(
    "incr_by", "-- KEYS[1] a counter\n-- ARGV[1] the increment\n\nreturn redis.call('INCRBY', KEYS[1], ARGV[1])"
)
FAIL_ON_NEGATIVE = LuaScript.from_source(
    "fail_on_negative",
    "-- KEYS: none\n-- ARGV[1] a number\n\n"
    "if tonumber(ARGV[1]) < 0 then return redis.error_reply('negative: ' .. ARGV[1]) end return ARGV[1]",
)


def test_concurrent_calls_share_one_round_trip_and_each_gets_its_own_result(redis_url: str) -> None:
    async def scenario() -> tuple[list[int], int, int]:
        client = aioredis.Redis.from_url(redis_url)
        batcher = ScriptBatcher(client)
        results = await asyncio.gather(*(batcher.run(INCR_BY.bind(keys=[f"n:{i % 3}"], args=[i])) for i in range(30)))
        await client.aclose()
        return list(results), batcher.round_trips, batcher.calls

    results, round_trips, calls = asyncio.run(scenario())
    assert calls == 30 and round_trips == 1
    # Each key's running total, in call order: the calls ran one after the other, in order.
    totals = {0: 0, 1: 0, 2: 0}
    expected = []
    for i in range(30):
        totals[i % 3] += i
        expected.append(totals[i % 3])
    assert results == expected


def test_a_script_error_reaches_only_the_call_that_caused_it(redis_url: str) -> None:
    async def scenario() -> list[object]:
        client = aioredis.Redis.from_url(redis_url)
        batcher = ScriptBatcher(client)
        calls = [batcher.run(FAIL_ON_NEGATIVE.bind(keys=[], args=[v])) for v in (1, -2, 3)]
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        await client.aclose()
        return list(outcomes)

    first, second, third = asyncio.run(scenario())
    assert first == b"1" and third == b"3"
    assert isinstance(second, redis.ResponseError) and "negative: -2" in str(second)


def test_scripts_flushed_from_redis_are_loaded_again_and_the_calls_run_once(redis_url: str, redis_client: redis.Redis) -> None:
    async def scenario() -> list[int]:
        client = aioredis.Redis.from_url(redis_url)
        batcher = ScriptBatcher(client)
        await batcher.run(INCR_BY.bind(keys=["flushed"], args=[1]))
        await client.script_flush()  # what a Redis restart does to the script cache
        again = await asyncio.gather(*(batcher.run(INCR_BY.bind(keys=["flushed"], args=[n])) for n in (10, 100)))
        await client.aclose()
        return list(again)

    assert asyncio.run(scenario()) == [11, 111]
    assert int(redis_client.get("flushed") or 0) == 111


def test_an_unreachable_redis_fails_every_waiting_call(unused_tcp_port: int) -> None:
    async def scenario() -> list[object]:
        # No retries: the client's default (10, with back-off) only makes the refusal take seconds to arrive.
        client = aioredis.Redis(host="127.0.0.1", port=unused_tcp_port, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))
        batcher = ScriptBatcher(client)
        calls = [batcher.run(INCR_BY.bind(keys=["k"], args=[1])) for _ in range(3)]
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        await client.aclose()
        return list(outcomes)

    outcomes = asyncio.run(scenario())
    assert len(outcomes) == 3 and all(isinstance(o, redis.ConnectionError) for o in outcomes)


@pytest.fixture
def unused_tcp_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
