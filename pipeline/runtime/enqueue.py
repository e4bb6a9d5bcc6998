"""Send stage items to their queues: many items per broker message, grouped by delay.

Messages go through the broker they are given, never through Dramatiq's global one, and encode
themselves with mailpipe's encoder (`StageMessage`), never with the process-wide encoder: a client
embedded in another application's process leaves that application's Dramatiq set-up alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from itertools import islice
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import dramatiq
import redis
from redis.client import Pipeline

from pipeline.models import STAGES, queue_name
from pipeline.runtime.wire import OrjsonEncoder

if TYPE_CHECKING:
    from pipeline.stages.batch import Forward

BATCH_SIZE = 100
DELAY_BUCKET = 0.001  # items due within the same millisecond travel together
NOW = 0.010
_ENCODER = OrjsonEncoder()


def actor_name(stage: str) -> str:
    return f"mailpipe_{stage}"


def payload(items: list[str]) -> dict[str, object]:
    return {"v": 1, "items": items}


def decode_payload(data: dict[str, object]) -> list[str]:
    items = data.get("items")
    if not isinstance(items, list):
        raise ValueError("stage message has no items list")
    return [i if isinstance(i, str) else json.dumps(i) for i in items]


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


@runtime_checkable
class BatchingBroker(Protocol):
    """A broker that can put several messages and a state write in one round trip (runtime.broker's)."""

    def shares_server(self, client: redis.Redis) -> bool: ...

    def enqueue_batch(
        self, messages: list[tuple[dramatiq.Message[Any], int | None]], then: Callable[[Pipeline], None]
    ) -> None: ...


class Enqueuer:
    def __init__(self, broker: dramatiq.Broker, batch_size: int = BATCH_SIZE) -> None:
        self.broker = broker
        self.batch_size = batch_size
        for stage in STAGES:
            broker.declare_queue(queue_name(stage))

    def forward(self, forwards: Iterable[Forward], then: StateWrites | None = None) -> int:
        """Enqueue the items, many per message; then apply `then` (the sweeper's progress). On a
        Redis broker that shares the state store's server both go out in one round trip."""
        groups: dict[tuple[str, int], list[str]] = {}
        for fwd in forwards:
            bucket = 0 if fwd.delay < NOW else int(fwd.delay / DELAY_BUCKET)
            groups.setdefault((fwd.stage, bucket), []).append(fwd.item)
        messages: list[tuple[dramatiq.Message[Any], int | None]] = [
            (_message(stage, chunk), _delay_ms(bucket * DELAY_BUCKET))
            for (stage, bucket), items in groups.items()
            for chunk in _chunks(items, self.batch_size)
        ]
        broker = self.broker
        if then is not None and messages and isinstance(broker, BatchingBroker) and broker.shares_server(then.client):
            broker.enqueue_batch(messages, then.queue)
            return len(messages)
        for message, delay in messages:
            self.broker.enqueue(message, delay=delay)
        if then is not None:
            then.write()
        return len(messages)

    def send(self, stage: str, items: list[str], delay: float = 0.0) -> None:
        self.broker.enqueue(_message(stage, items), delay=_delay_ms(delay))


class StateWrites(Protocol):
    """Writes to the state store that may ride along with an enqueue."""

    client: redis.Redis

    def queue(self, pipe: Pipeline) -> None: ...

    def write(self) -> None: ...


class StageMessage(dramatiq.Message[Any]):
    """A stage message that encodes itself with mailpipe's encoder, whatever `dramatiq.set_encoder`
    the process chose (the JSON is the same; workers read either). Copies stay StageMessages."""

    def encode(self) -> bytes:
        return _ENCODER.encode(self.asdict())


def _message(stage: str, items: list[str]) -> StageMessage:
    return StageMessage(queue_name=queue_name(stage), actor_name=actor_name(stage), args=(payload(items),), kwargs={}, options={})


def _delay_ms(delay: float) -> int | None:
    return int(delay * 1000) if delay > 0 else None
