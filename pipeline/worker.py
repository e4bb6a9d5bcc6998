"""The module `dramatiq` imports in each worker process: broker and actors from the config."""

from __future__ import annotations

from .actors import declare_actors
from .broker import WORKER_PATIENCE, make_broker
from .config import load_config
from .logs import configure_logging

configure_logging()
# A worker waits for an unreachable Redis (restart, fail-over) instead of dropping what it holds.
broker = make_broker(load_config().broker, patience=WORKER_PATIENCE)
actors = declare_actors(broker)
