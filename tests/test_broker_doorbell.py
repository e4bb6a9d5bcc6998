"""The broker's doorbell: an idle consumer blocks on it instead of polling, an enqueue wakes it."""

from __future__ import annotations

import threading
import time
from typing import Any

import dramatiq
import redis

from pipeline.broker import DOORBELL_DEPTH, ResilientRedisBroker


def _message(queue: str, n: int) -> dramatiq.Message[Any]:
    return dramatiq.Message(queue_name=queue, actor_name="a", args=(n,), kwargs={}, options={})


def test_each_enqueue_rings_its_queue_and_the_doorbell_stays_bounded(redis_url: str) -> None:
    broker = ResilientRedisBroker(url=redis_url, namespace="bell")
    broker.declare_queue("q")
    client = redis.Redis.from_url(redis_url)
    broker.enqueue(_message("q", 1))
    assert client.llen(broker.doorbell_key("q")) == 1
    broker.enqueue(_message("q", 2), delay=60_000)
    assert client.llen(broker.doorbell_key("q.DQ")) == 1  # a delayed message wakes the delay queue's consumer
    for n in range(3 * DOORBELL_DEPTH):
        broker.enqueue(_message("q", n))
    assert client.llen(broker.doorbell_key("q")) == DOORBELL_DEPTH


def test_an_idle_consumer_waits_on_the_doorbell_and_an_enqueue_wakes_it_at_once(redis_url: str) -> None:
    broker = ResilientRedisBroker(url=redis_url, namespace="wake")
    broker.declare_queue("q")
    fetches = 0
    fetch = broker.do_fetch

    def counting_fetch(*args: Any) -> Any:
        nonlocal fetches
        fetches += 1
        return fetch(*args)

    broker.do_fetch = counting_fetch  # type: ignore[method-assign]
    consumer = broker.consume("q", prefetch=4, timeout=3000)
    received: list[tuple[float, Any]] = []

    def consume() -> None:
        while not received:
            message = next(consumer)
            if message is not None:
                received.append((time.monotonic(), message))

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    time.sleep(1.5)
    # Dramatiq alone would have polled the empty queue ~8 times by now (5, 10, 20 … ms back-off).
    assert fetches <= 2
    sent_at = time.monotonic()
    broker.enqueue(_message("q", 7))
    thread.join(timeout=5)
    assert received, "the consumer never got the message"
    woke_after, message = received[0][0] - sent_at, received[0][1]
    assert message.args == (7,)
    assert woke_after < 1.0, f"picked up {woke_after:.2f} s after the enqueue: the doorbell did not wake it"
    consumer.ack(message)
    consumer.close()
