"""Apply a stage function to a batch: per-item errors isolated, infrastructure errors raised.

An item that cannot be decoded or that makes the stage raise unexpectedly is dead-lettered and
given a final outcome; it never blocks the batch or crashes the worker. A Redis outage raises,
so the broker redelivers the whole (idempotent) batch later.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import redis
import structlog

from pipeline.context import StageContext
from pipeline.models import RecipientEvent
from pipeline.state.status import Transition

log = structlog.get_logger("mailpipe.stage")
T = TypeVar("T")

INFRASTRUCTURE_ERRORS = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, redis.ReadOnlyError)


@dataclass
class Forward:
    """An item for the next stage, optionally delayed."""

    stage: str
    item: str
    delay: float = 0.0


def _identity(raw: str) -> tuple[str, str]:
    """Best-effort (tenant, event_id) of an undecodable item, for its dead-letter record."""
    try:
        data: Any = json.loads(raw)
    except ValueError:
        return "default", ""
    for path in (("event",), ("message", "event"), ("routed", "message", "event"), ()):
        node = data
        for part in path:
            node = node.get(part, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict) and isinstance(node.get("event_id"), str):
            return str(node.get("tenant", "default")), node["event_id"]
    return "default", ""


def decode_all(stage: str, items: Iterable[str], decode: Callable[[str], T], ctx: StageContext) -> list[T]:
    decoded: list[T] = []
    for raw in items:
        try:
            decoded.append(decode(raw))
        except INFRASTRUCTURE_ERRORS:
            raise
        except Exception as exc:
            poison(stage, raw, exc, ctx)
    return decoded


def run_batch(
    stage: str,
    items: Iterable[str],
    decode: Callable[[str], T],
    handle: Callable[[list[T], StageContext], list[Forward]],
    ctx: StageContext,
) -> list[Forward]:
    decoded = decode_all(stage, items, decode, ctx)
    if not decoded:
        return []
    try:
        return handle(decoded, ctx)
    except INFRASTRUCTURE_ERRORS:
        raise
    except Exception as exc:
        if len(decoded) == 1:
            poison(stage, _raw(decoded[0]), exc, ctx)
            return []
    forwards: list[Forward] = []
    for item in decoded:
        try:
            forwards.extend(handle([item], ctx))
        except INFRASTRUCTURE_ERRORS:
            raise
        except Exception as exc:
            poison(stage, _raw(item), exc, ctx)
    return forwards


async def run_batch_async(
    stage: str,
    items: Iterable[str],
    decode: Callable[[str], T],
    handle: Callable[[list[T]], Awaitable[list[Forward]]],
    ctx: StageContext,
) -> list[Forward]:
    decoded = decode_all(stage, items, decode, ctx)
    if not decoded:
        return []
    try:
        return await handle(decoded)
    except INFRASTRUCTURE_ERRORS:
        raise
    except Exception as exc:
        if len(decoded) == 1:
            poison(stage, _raw(decoded[0]), exc, ctx)
            return []
    forwards: list[Forward] = []
    for item in decoded:
        try:
            forwards.extend(await handle([item]))
        except INFRASTRUCTURE_ERRORS:
            raise
        except Exception as exc:
            poison(stage, _raw(item), exc, ctx)
    return forwards


def _raw(item: object) -> str:
    to_json = getattr(item, "to_json", None)
    return str(to_json()) if callable(to_json) else str(item)


def poison(stage: str, raw: str, exc: BaseException, ctx: StageContext) -> None:
    tenant, event_id = _identity(raw)
    error = f"{stage}: {type(exc).__name__}: {exc}"
    log.error("stage_item_failed", stage=stage, event_id=event_id or None, error=error)
    ctx.status.dead_letter(tenant, event_id or f"unknown:{hash(raw)}", stage, error, raw[:20_000])
    if event_id:
        ctx.status.record([Transition(tenant, event_id, RecipientEvent.FAILED, {"stage": stage, "error": error})])
