"""The worker-wide objects of one worker process: made once, opened and closed with the worker.

`RuntimeMiddleware` opens the runtime after Dramatiq boots the worker (the registry's change
listener starts) and closes it before the worker shuts down, while the send stage's event loop still
runs: SMTP sessions get their QUIT, Redis clients and the database pool are released. The module
functions below are what the actors call; each builds its object once even when worker threads race.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import dramatiq
import structlog
from dramatiq.asyncio import get_event_loop_thread

from pipeline.config import Config, load_config
from pipeline.context import StageContext, build_context
from pipeline.runtime.enqueue import Enqueuer
from pipeline.stages.send import SendRuntime

if TYPE_CHECKING:
    from pipeline.registry.listener import ChangeListener

log = structlog.get_logger("mailpipe.runtime")
CLOSE_TIMEOUT = 10.0


class WorkerRuntime:
    def __init__(self, load: Callable[[], Config] = load_config) -> None:
        self._load = load
        self._lock = threading.RLock()
        self._context: StageContext | None = None
        self._enqueuer: Enqueuer | None = None
        self._send: SendRuntime | None = None
        self._listener: ChangeListener | None = None

    def context(self) -> StageContext:
        with self._lock:
            if self._context is None:
                self._context = build_context(self._load())
            return self._context

    def enqueuer(self) -> Enqueuer:
        with self._lock:
            if self._enqueuer is None:
                self._enqueuer = Enqueuer(dramatiq.get_broker())
            return self._enqueuer

    def send_runtime(self) -> SendRuntime:
        with self._lock:
            if self._send is None:
                self._send = SendRuntime(self.context())
            return self._send

    def open(self) -> None:
        """Follow registry changes at once (a NOTIFY), not only at the next version check."""
        ctx = self.context()
        url = ctx.config.database.resolved_url()
        with self._lock:
            if url is not None and self._listener is None:
                from pipeline.registry.listener import ChangeListener  # psycopg: only a deployment with a database

                self._listener = ChangeListener(ctx.registry, url).start()

    def close(self) -> None:
        with self._lock:
            listener, send_rt, context = self._listener, self._send, self._context
            self._listener = self._send = self._enqueuer = self._context = None
        if listener is not None:
            listener.stop()
        if send_rt is not None:
            _on_event_loop(send_rt.close())
        if context is not None:
            context.close()


def _on_event_loop(coroutine: Any) -> None:
    """Run a coroutine on the send stage's event loop if it still runs (QUIT needs the loop the sessions live on)."""
    thread = get_event_loop_thread()
    if thread is None:
        coroutine.close()
        return
    try:
        thread.run_coroutine(asyncio.wait_for(coroutine, CLOSE_TIMEOUT))
    except Exception as exc:
        log.warning("runtime_close_incomplete", error=type(exc).__name__)


class RuntimeMiddleware(dramatiq.Middleware):
    def __init__(self, runtime: WorkerRuntime) -> None:
        self.runtime = runtime

    def after_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        self.runtime.open()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        self.runtime.close()
        log.info("runtime_closed")


RUNTIME = WorkerRuntime()


def context() -> StageContext:
    return RUNTIME.context()


def enqueuer() -> Enqueuer:
    return RUNTIME.enqueuer()


def send_runtime() -> SendRuntime:
    return RUNTIME.send_runtime()


def reset() -> None:
    """Forget every object (tests that switch configs); close them first with RUNTIME.close() when opened."""
    RUNTIME.close()
