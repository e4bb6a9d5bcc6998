"""The module `dramatiq` imports in each worker process: broker and actors from the config."""

from __future__ import annotations

import gc

from .actors import declare_actors
from .broker import WORKER_PATIENCE, make_broker
from .config import load_config
from .logs import configure_logging

# Each email allocates hundreds of short-lived objects (models, dicts, coroutines): at the default
# young-generation threshold (700) the collector ran many times per batch, and every full
# collection walked the tens of thousands of objects the imports made. Measured: -10 % worker CPU.
GC_YOUNG_THRESHOLD = 20_000


def tune_gc() -> None:
    gc.freeze()  # what exists after start-up lives as long as the process: never scan it again
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 50)


configure_logging()
# A worker waits for an unreachable Redis (restart, fail-over) instead of dropping what it holds.
broker = make_broker(load_config().broker, patience=WORKER_PATIENCE)
actors = declare_actors(broker)

tune_gc()
