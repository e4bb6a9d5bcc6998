"""A stage hop's enqueue and the sweeper's progress in one round trip, on a real Redis."""

from __future__ import annotations

import time
from typing import Any

import dramatiq
import redis

from pipeline.models import queue_name
from pipeline.runtime.broker import ResilientRedisBroker
from pipeline.runtime.enqueue import Enqueuer, actor_name, decode_payload
from pipeline.runtime.sweeper import progress_of
from pipeline.stages.batch import Forward
from pipeline.state import keys


def _item(event_id: str) -> str:
    return f'{{"event":{{"event_id":"{event_id}","tenant":"acme","to":"a@example.com"}}}}'


def _queued(broker: ResilientRedisBroker, queue: str) -> list[dramatiq.Message[Any]]:
    """Every message waiting on `queue` (fetched and acked by the test's own consumer)."""
    consumer = broker.consume(queue, prefetch=100, timeout=50)
    found = []
    while (message := next(consumer)) is not None:
        found.append(message._message)
        consumer.ack(message)
    consumer.close()
    return found


def _setup(redis_url: str, namespace: str) -> tuple[ResilientRedisBroker, Enqueuer, redis.Redis]:
    broker = ResilientRedisBroker(url=redis_url, namespace=namespace)
    client = redis.Redis.from_url(redis_url)
    client.zadd(keys.pending("acme"), {"e1": 1.0, "e2": 1.0, "e3": 1.0})
    return broker, Enqueuer(broker), client


def test_forward_enqueues_now_and_delayed_and_moves_progress_in_one_round_trip(redis_url: str) -> None:
    broker, enqueuer, client = _setup(redis_url, "hop")
    round_trips = 0
    send = redis.connection.AbstractConnection.send_packed_command

    def counting(self: redis.connection.AbstractConnection, *args: Any, **kwargs: Any) -> Any:
        nonlocal round_trips  # one socket write per round trip: a pipeline writes all its commands at once
        round_trips += 1
        return send(self, *args, **kwargs)

    forwards = [Forward("route", _item("e1")), Forward("route", _item("e2")), Forward("send", _item("e3"), 30.0)]
    now = time.time()
    enqueuer.forward([Forward("route", _item("warm-up"))])  # the dispatch script is loaded
    redis.connection.AbstractConnection.send_packed_command = counting  # type: ignore[method-assign]
    try:
        sent = enqueuer.forward(forwards, then=progress_of(client, forwards, now))
    finally:
        redis.connection.AbstractConnection.send_packed_command = send  # type: ignore[method-assign]
    assert sent == 2 and round_trips == 1

    routed = _queued(broker, queue_name("route"))
    assert [m.actor_name for m in routed] == [actor_name("route")] * 2  # the warm-up's and this one
    assert decode_payload(routed[-1].args[0]) == [_item("e1"), _item("e2")]
    delayed = _queued(broker, queue_name("send") + ".DQ")
    assert len(delayed) == 1 and delayed[0].options["eta"] >= now * 1000 + 29_000
    scores = dict(client.zrange(keys.pending("acme"), 0, -1, withscores=True))
    assert scores[b"e1"] == scores[b"e2"] == now and scores[b"e3"] == now + 30.0


def test_an_event_no_longer_pending_is_not_put_back(redis_url: str) -> None:
    broker, enqueuer, client = _setup(redis_url, "final")
    client.zrem(keys.pending("acme"), "e2")  # reached its final outcome meanwhile
    forwards = [Forward("classify", _item("e2"))]
    enqueuer.forward(forwards, then=progress_of(client, forwards, time.time()))
    assert client.zscore(keys.pending("acme"), "e2") is None
    assert len(_queued(broker, queue_name("classify"))) == 1


def test_scripts_flushed_from_redis_are_loaded_again(redis_url: str) -> None:
    broker, enqueuer, client = _setup(redis_url, "flushed")
    enqueuer.forward([Forward("route", _item("e1"))])  # the dispatch script is known to Redis…
    client.script_flush()  # …and then it is not (a restart without persistence, SCRIPT FLUSH)
    forwards = [Forward("route", _item("e2")), Forward("route", _item("e3"), 5.0)]
    enqueuer.forward(forwards, then=progress_of(client, forwards, 42.0))
    assert len(_queued(broker, queue_name("route"))) == 2
    assert len(_queued(broker, queue_name("route") + ".DQ")) == 1
    assert client.zscore(keys.pending("acme"), "e3") == 47.0


def test_a_state_store_on_another_database_is_written_on_its_own(redis_url: str) -> None:
    broker, enqueuer, _ = _setup(redis_url, "otherdb")
    other = redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + "/5")
    other.zadd(keys.pending("acme"), {"e1": 1.0})
    assert not broker.shares_server(other)
    forwards = [Forward("route", _item("e1"), 2.0)]
    enqueuer.forward(forwards, then=progress_of(other, forwards, 100.0))
    assert other.zscore(keys.pending("acme"), "e1") == 102.0
    assert len(_queued(broker, queue_name("route") + ".DQ")) == 1
