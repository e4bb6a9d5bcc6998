"""Send stage items to their queues: many items per broker message, grouped by delay."""

from __future__ import annotations

import json
from collections.abc import Iterable
from itertools import islice

import dramatiq

from .stages.batch import Forward

QUEUE_PREFIX = "mailpipe."
BATCH_SIZE = 100
DELAY_BUCKET = 0.001  # items due within the same millisecond travel together
NOW = 0.010


def queue_name(stage: str) -> str:
    return QUEUE_PREFIX + stage


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


class Enqueuer:
    def __init__(self, broker: dramatiq.Broker, batch_size: int = BATCH_SIZE) -> None:
        self.broker = broker
        self.batch_size = batch_size
        for stage in ("render", "route", "rate_limit", "send", "classify"):
            broker.declare_queue(queue_name(stage))

    def forward(self, forwards: Iterable[Forward]) -> int:
        groups: dict[tuple[str, int], list[str]] = {}
        for fwd in forwards:
            bucket = 0 if fwd.delay < NOW else int(fwd.delay / DELAY_BUCKET)
            groups.setdefault((fwd.stage, bucket), []).append(fwd.item)
        sent = 0
        for (stage, bucket), items in groups.items():
            for chunk in _chunks(items, self.batch_size):
                self.send(stage, chunk, bucket * DELAY_BUCKET)
                sent += 1
        return sent

    def send(self, stage: str, items: list[str], delay: float = 0.0) -> None:
        message = dramatiq.Message(
            queue_name=queue_name(stage),
            actor_name=actor_name(stage),
            args=(payload(items),),
            kwargs={},
            options={},
        )
        self.broker.enqueue(message, delay=int(delay * 1000) if delay > 0 else None)
