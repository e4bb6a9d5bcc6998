"""The module `dramatiq` imports in each worker process: broker and actors from the config."""

from __future__ import annotations

import asyncio
import gc

import uvloop
from dramatiq.middleware import AsyncIO

from pipeline.config import load_config
from pipeline.observe.logs import configure_logging, inherited_stderr
from pipeline.runtime.actors import declare_actors
from pipeline.runtime.broker import WORKER_PATIENCE, make_broker
from pipeline.runtime.resources import RUNTIME, RuntimeMiddleware

# Each email allocates hundreds of short-lived objects (models, dicts, coroutines): at the default
# young-generation threshold (700) the collector ran many times per batch, and every full
# collection walked the tens of thousands of objects the imports made. Measured: -10 % worker CPU.
GC_YOUNG_THRESHOLD = 20_000


def use_uvloop() -> None:
    """The send stage's event loop (Dramatiq's AsyncIO thread, made after this module loads) runs
    on uvloop: the loop's own bookkeeping was ~11 % of worker CPU under stdlib asyncio."""
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def tune_gc() -> None:
    gc.freeze()  # what exists after start-up lives as long as the process: never scan it again
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 50)


configure_logging(stream=inherited_stderr())
# A worker waits for an unreachable Redis (restart, fail-over) instead of dropping what it holds.
broker = make_broker(load_config().broker, patience=WORKER_PATIENCE)
# Before AsyncIO: the runtime closes while the send stage's event loop still runs (SMTP QUIT needs it).
broker.add_middleware(RuntimeMiddleware(RUNTIME), before=AsyncIO)
actors = declare_actors(broker)

use_uvloop()
tune_gc()
