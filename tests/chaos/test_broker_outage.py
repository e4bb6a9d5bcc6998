"""The Redis broker under a Redis outage: consumers survive, keep what they hold, recover orphans."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import dramatiq
import pytest
import redis
from dramatiq.errors import ConnectionClosed
from eventually import eventually

from pipeline.runtime.broker import ResilientRedisBroker
from pipeline.state.localredis import LocalRedis

pytestmark = pytest.mark.chaos


def test_delayed_messages_held_in_memory_survive_a_redis_restart_and_no_consumer_thread_dies(
    aof_redis: LocalRedis,
) -> None:
    broker = ResilientRedisBroker(url=aof_redis.url, namespace="outage", patience=30)
    done: list[int] = []
    lock = threading.Lock()

    @dramatiq.actor(broker=broker, queue_name="outage", max_retries=0)
    def record(n: int) -> None:
        with lock:
            done.append(n)

    for n in range(20):
        record.send_with_options(args=(n,), delay=1500)
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
    worker.start()
    restarted: list[LocalRedis] = []
    try:
        client = redis.Redis.from_url(aof_redis.url)
        acks = broker.acks_key("outage.DQ")
        assert eventually(lambda: client.scard(acks) == 20, bool, timeout=20), "the delay-queue consumer holds all 20 in memory"
        aof_redis.stop()
        time.sleep(3)  # every eta passes while Redis is down: the due messages cannot be enqueued
        restarted.append(LocalRedis(aof_redis.directory, appendonly=True, port=aof_redis.port).start())

        assert eventually(lambda: len(set(done)) == 20, bool, timeout=20), sorted(done)
        assert all(thread.is_alive() for thread in worker.consumers.values())
        assert eventually(lambda: client.scard(acks) == 0 and client.hlen("outage:outage.DQ.msgs") == 0, bool, timeout=20)
    finally:
        worker.stop(timeout=5000)
        for server in restarted:
            server.stop()
    assert sorted(set(done)) == list(range(20))


def test_a_new_consumer_requeues_what_its_process_fetched_but_no_longer_holds(redis_url: str) -> None:
    broker = ResilientRedisBroker(url=redis_url, namespace="orphans")
    broker.declare_queue("q")
    for n in range(3):
        broker.enqueue(dramatiq.Message(queue_name="q", actor_name="a", args=(n,), kwargs={}, options={}))
    fetched = broker.do_fetch("q", 3)  # a consumer fetched these, then dropped them on a connection error
    assert len(fetched) == 3
    ids = [dramatiq.Message.decode(data).options["redis_message_id"] for data in fetched]
    broker.hold("q", ids[0])  # ...except this one, still in a worker thread's hands

    consumer = broker.consume("q", prefetch=10, timeout=100)
    got = [m for m in (next(consumer) for _ in range(5)) if m is not None]

    assert sorted(m.options["redis_message_id"] for m in got) == sorted(ids[1:])
    assert broker.held("q") == set(ids)
    for message in got:
        consumer.ack(message)
    assert broker.held("q") == {ids[0]}
    assert broker.client.smembers(broker.acks_key("q")) == {ids[0].encode()}


def test_with_redis_down_a_client_fails_fast_and_a_consumer_never_raises_a_raw_redis_error(tmp_path: Path) -> None:
    server = LocalRedis(tmp_path / "r").start()
    client_broker = ResilientRedisBroker(url=server.url, namespace="down")  # patience 0: a submitting client
    worker_broker = ResilientRedisBroker(url=server.url, namespace="down", patience=30)
    client_broker.declare_queue("q")
    worker_broker.declare_queue("q")
    message = client_broker.enqueue(dramatiq.Message(queue_name="q", actor_name="a", args=(), kwargs={}, options={}))
    consumer = worker_broker.consume("q", prefetch=10, timeout=100)
    fetched = next(consumer)
    assert fetched is not None
    server.stop()

    started = time.monotonic()
    with pytest.raises(redis.ConnectionError):
        client_broker.enqueue(dramatiq.Message(queue_name="q", actor_name="a", args=(), kwargs={}, options={}))
    assert time.monotonic() - started < 10
    assert next(consumer) is None  # waits for Redis instead of raising
    with pytest.raises(ConnectionClosed):  # what Dramatiq's consumer thread knows how to survive
        consumer.requeue([fetched])
    assert message.options["redis_message_id"] not in worker_broker.held("q")
    worker_broker.stopping.set()
    with pytest.raises(ConnectionClosed):
        consumer.ack(fetched)


def test_a_new_delay_queue_consumer_takes_back_what_the_previous_one_held_in_memory(redis_url: str) -> None:
    broker = ResilientRedisBroker(url=redis_url, namespace="orphans-dq")
    broker.declare_queue("q")
    broker.enqueue(dramatiq.Message(queue_name="q", actor_name="a", args=(), kwargs={}, options={}), delay=60_000)
    first = broker.consume("q.DQ", prefetch=10, timeout=100)
    held = next(first)
    assert held is not None  # in a consumer thread's delay queue, which a connection error empties

    second = broker.consume("q.DQ", prefetch=10, timeout=100)
    again = next(second)

    assert again is not None and again.options["redis_message_id"] == held.options["redis_message_id"]
