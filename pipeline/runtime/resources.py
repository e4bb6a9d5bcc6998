"""Per-process singletons for the actors, built lazily after the worker process starts."""

from __future__ import annotations

import functools

import dramatiq

from pipeline.config import load_config
from pipeline.context import StageContext, build_context
from pipeline.runtime.enqueue import Enqueuer
from pipeline.stages.send import SendRuntime


@functools.cache
def context() -> StageContext:
    return build_context(load_config())


@functools.cache
def enqueuer() -> Enqueuer:
    return Enqueuer(dramatiq.get_broker())


@functools.cache
def send_runtime() -> SendRuntime:
    return SendRuntime(context())


def reset() -> None:
    for cached in (context, enqueuer, send_runtime):
        cached.cache_clear()
