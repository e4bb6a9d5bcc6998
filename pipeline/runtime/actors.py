"""Thin Dramatiq actors, one per stage and queue: decode, call the stage function, enqueue the next."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import dramatiq

from pipeline.context import StageContext
from pipeline.models import queue_name
from pipeline.observe import journey
from pipeline.runtime import resources as runtime
from pipeline.runtime.enqueue import actor_name, decode_payload
from pipeline.runtime.sweeper import progress_of
from pipeline.stages import classify, rate_limit, render, route, send
from pipeline.stages.batch import poison, run_batch, run_batch_async

# Infrastructure failures (Redis down) raise out of the actor: Dramatiq retries the whole batch.
RETRY_OPTIONS: dict[str, Any] = {"max_retries": 1000, "min_backoff": 500, "max_backoff": 30_000}


def _items(stage: str, message: Any, ctx: StageContext) -> list[str]:
    """A broker message without an items list is dead-lettered once, never retried."""
    try:
        return decode_payload(message)
    except (ValueError, AttributeError) as exc:
        poison(stage, repr(message)[:20_000], exc, ctx)
        return []


def _sync_actor(stage: str, module: ModuleType) -> Callable[[dict[str, Any]], None]:
    def run(message: dict[str, Any]) -> None:
        ctx = runtime.context()
        items = _items(stage, message, ctx)
        with journey.observe(stage, len(items), module.decode) as observed:
            forwards = run_batch(stage, items, observed.decode, module.handle, ctx)
            runtime.enqueuer().forward(forwards, then=progress_of(ctx.redis, forwards, ctx.clock()))

    run.__name__ = actor_name(stage)
    return run


async def _send(message: dict[str, Any]) -> None:
    send_rt = runtime.send_runtime()

    async def handle(messages: list[Any]) -> list[Any]:
        return await send.handle(messages, send_rt)

    items = _items("send", message, send_rt.ctx)
    with journey.observe("send", len(items), send.decode) as observed:
        forwards = await run_batch_async("send", items, observed.decode, handle, send_rt.ctx)
        runtime.enqueuer().forward(forwards, then=progress_of(send_rt.ctx.redis, forwards, send_rt.ctx.clock()))


def declare_actors(broker: dramatiq.Broker) -> dict[str, dramatiq.Actor[Any, Any]]:
    actors: dict[str, dramatiq.Actor[Any, Any]] = {}
    for stage, module in (("render", render), ("route", route), ("rate_limit", rate_limit), ("classify", classify)):
        declare = dramatiq.actor(actor_name=actor_name(stage), queue_name=queue_name(stage), broker=broker, **RETRY_OPTIONS)
        actors[stage] = declare(_sync_actor(stage, module))
    declare_send = dramatiq.actor(actor_name=actor_name("send"), queue_name=queue_name("send"), broker=broker, **RETRY_OPTIONS)
    actors["send"] = declare_send(_send)
    return actors
