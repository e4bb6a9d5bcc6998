"""Thin Dramatiq actors, one per stage and queue: decode, call the stage function, enqueue the next.

Every actor runs on a Dramatiq worker thread. The send stage's SMTP work is asynchronous: its actor
hands just that coroutine to the process's event loop (Dramatiq's AsyncIO thread, shared by all its
send batches) and waits; decoding, status writes, dead letters and the enqueue of what comes next
are blocking Redis work and stay on the worker thread, so the loop never waits for them.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Coroutine
from types import ModuleType
from typing import Any, TypeVar

import dramatiq
from dramatiq.asyncio import get_event_loop_thread

from pipeline.context import StageContext
from pipeline.models import queue_name
from pipeline.observe import journey
from pipeline.runtime import resources as runtime
from pipeline.runtime.enqueue import actor_name, decode_payload
from pipeline.runtime.sweeper import progress_of
from pipeline.stages import classify, rate_limit, render, route, send
from pipeline.stages.batch import poison, run_batch, run_batch_on_loop

# Infrastructure failures (Redis down) raise out of the actor: Dramatiq retries the whole batch.
RETRY_OPTIONS: dict[str, Any] = {"max_retries": 1000, "min_backoff": 500, "max_backoff": 30_000}
T = TypeVar("T")


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


def loop_runner() -> Callable[[Coroutine[Any, Any, T]], T]:
    """What runs a coroutine on the process's event loop (Dramatiq's AsyncIO thread) and waits for
    it, in the calling thread's context (the stage's journey and log bindings go along).
    Interrupts (time limit, shutdown) cancel it. Raises at once if there is no loop."""
    thread = get_event_loop_thread()
    if thread is None:
        raise RuntimeError("the send stage needs Dramatiq's AsyncIO middleware (make_broker adds it)")

    def run(coroutine: Coroutine[Any, Any, T]) -> T:
        context = contextvars.copy_context()

        async def in_context() -> T:
            return await asyncio.get_running_loop().create_task(coroutine, context=context)

        return thread.run_coroutine(in_context())

    return run


def _send(message: dict[str, Any]) -> None:
    on_loop = loop_runner()
    send_rt = runtime.send_runtime()
    ctx = send_rt.ctx

    def handle(messages: list[Any]) -> Coroutine[Any, Any, Any]:
        return send.handle(messages, send_rt)

    items = _items("send", message, ctx)
    with journey.observe("send", len(items), send.decode) as observed:
        forwards = run_batch_on_loop("send", items, observed.decode, handle, ctx, on_loop)
        runtime.enqueuer().forward(forwards, then=progress_of(ctx.redis, forwards, ctx.clock()))


def declare_actors(broker: dramatiq.Broker) -> dict[str, dramatiq.Actor[Any, Any]]:
    actors: dict[str, dramatiq.Actor[Any, Any]] = {}
    for stage, module in (("render", render), ("route", route), ("rate_limit", rate_limit), ("classify", classify)):
        declare = dramatiq.actor(actor_name=actor_name(stage), queue_name=queue_name(stage), broker=broker, **RETRY_OPTIONS)
        actors[stage] = declare(_sync_actor(stage, module))
    declare_send = dramatiq.actor(actor_name=actor_name("send"), queue_name=queue_name("send"), broker=broker, **RETRY_OPTIONS)
    actors["send"] = declare_send(_send)
    return actors
