"""What every stage batch reports: its metrics and one canonical log line per email.

The actor wraps its stage call in `observe(stage, items, decode)` and passes `run.decode` on;
decoding an item notes who it is (event id, account, attempt). When the batch ends each email
gets one `stage_done` line (logger `mailpipe.journey`) with its stage, ids, duration and the
outcome the stage noted with `note()` (`done` if it noted none). When the journey logger is
turned down (`MAILPIPE_LOG_JOURNEY=off`) nothing per email is collected or built.

Context binding: `stage` is bound for the batch here; stages bind `event_id`/`account`/
`attempt` per item where they log (inside the coroutine for send, since context variables bound
on a worker thread do not reach the asyncio loop thread).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import structlog

from pipeline.models import LeadEvent, RoutedMessage, RouteRequest, SendResult
from pipeline.observe import metrics
from pipeline.observe.logs import JOURNEY_LOGGER, write_journey_lines

T = TypeVar("T")
log = structlog.get_logger(JOURNEY_LOGGER)
_stdlib_journey = logging.getLogger(JOURNEY_LOGGER)
ITEM_KEYS = ("event_id", "account", "attempt")
_current: ContextVar[StageRun[Any] | None] = ContextVar("mailpipe_stage_run", default=None)


def identity(item: object) -> tuple[str | None, str | None, int | None]:
    """(event_id, account, attempt) of a stage input."""
    if isinstance(item, SendResult):
        item = item.routed
    if isinstance(item, RoutedMessage):
        return item.event.event_id, item.account, item.attempt
    if isinstance(item, RouteRequest):
        return item.message.event.event_id, None, item.attempt
    if isinstance(item, LeadEvent):
        return item.event_id, None, None
    return None, None, None


@dataclass
class StageRun(Generic[T]):
    stage: str
    _decode: Callable[[str], T]
    journey: bool
    items: list[tuple[str | None, str | None, int | None]] = field(default_factory=list)
    outcomes: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)

    def decode(self, raw: str) -> T:
        item = self._decode(raw)
        if self.journey:
            self.items.append(identity(item))
        return item


def note(event_id: str, outcome: str, **fields: Any) -> None:
    """A stage's outcome for one email, shown on its canonical line (no-op when lines are off)."""
    run = _current.get()
    if run is not None and run.journey:
        run.outcomes[event_id] = (outcome, fields)


@contextmanager
def observe(stage: str, count: int, decode: Callable[[str], T]) -> Iterator[StageRun[T]]:
    run = StageRun(stage, decode, journey=_stdlib_journey.isEnabledFor(logging.INFO))
    token = _current.set(run)
    started = time.perf_counter()
    try:
        with structlog.contextvars.bound_contextvars(stage=stage), metrics.stage_batch(stage, count):
            yield run
    except BaseException as exc:
        log.warning("stage_batch_failed", stage=stage, emails=count, error=f"{type(exc).__name__}: {exc}")
        raise
    else:
        if run.journey:
            _canonical_lines(run, round((time.perf_counter() - started) * 1000, 2), count)
    finally:
        _current.reset(token)
        structlog.contextvars.unbind_contextvars(*ITEM_KEYS)  # stages bind these per item


def _canonical_lines(run: StageRun[Any], duration_ms: float, batch: int) -> None:
    lines = []
    for event_id, account, attempt in run.items:
        outcome, fields = run.outcomes.get(event_id or "", ("done", {}))
        lines.append(
            {
                "stage": run.stage,
                "event_id": event_id,
                "account": account,
                "attempt": attempt,
                "outcome": outcome,
                "duration_ms": duration_ms,
                "batch": batch,
                **fields,
                "event": "stage_done",
            }
        )
    if write_journey_lines(lines):
        return
    for line in lines:
        line.pop("event")
        log.info("stage_done", **line)
