"""The module `dramatiq` imports in each worker process: broker and actors from the config."""

from __future__ import annotations

from .actors import declare_actors
from .broker import make_broker
from .config import load_config
from .logs import configure_logging

configure_logging()
broker = make_broker(load_config().broker)
actors = declare_actors(broker)
