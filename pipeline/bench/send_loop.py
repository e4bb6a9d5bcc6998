"""`python -m pipeline.bench.send_loop`: the send stage alone, on one event loop, and what holds the loop.

One process, as a worker runs the send stage: THREADS threads (Dramatiq's worker threads) each push
BATCHES batches of BATCH emails through the send actor onto one uvloop event loop, against
smtp-sink and a private Redis (no other stage competes for the GIL). Prints, as JSON, the rate, the
lateness of the 10 ms probe on the loop (`looplag`), and how many blocking redis-py calls the loop
thread made and how long they took (the send stage makes none: this is the check that stays so).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
import uvloop
from dramatiq.asyncio import EventLoopThread, set_event_loop_thread

from pipeline.bench.looplag import LoopLagProbe, read_lag
from pipeline.bench.scenario import Settings, write_scenario
from pipeline.bench.sink import SmtpSink
from pipeline.config import CONFIG_ENV, load_config
from pipeline.context import build_context
from pipeline.models import LeadEvent, RenderedMessage, RoutedMessage
from pipeline.runtime import actors
from pipeline.runtime import resources as runtime
from pipeline.runtime.broker import make_broker
from pipeline.runtime.enqueue import payload
from pipeline.state.localredis import LocalRedis

THREADS, BATCHES, BATCH = 4, 8, 100


class LoopCalls:
    """Times every redis-py (blocking) send and read made on one thread: the event loop's."""

    NAMES = ("send_packed_command", "read_response")

    def __init__(self) -> None:
        self.thread: int | None = None
        self.seconds: list[float] = []
        self._real: dict[str, Any] = {}

    def install(self) -> None:
        cls = redis.connection.AbstractConnection
        for name in self.NAMES:
            self._real[name] = getattr(cls, name)
            setattr(cls, name, self._timed(self._real[name]))

    def uninstall(self) -> None:
        for name, real in self._real.items():
            setattr(redis.connection.AbstractConnection, name, real)
        self._real.clear()

    def _timed(self, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(conn: Any, *args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() != self.thread:
                return real(conn, *args, **kwargs)
            started = time.perf_counter()
            try:
                return real(conn, *args, **kwargs)
            finally:
                self.seconds.append(time.perf_counter() - started)

        return call


def routed(i: int) -> RoutedMessage:
    body = "<p>" + "Hello there. " * 120 + "</p>"
    event = LeadEvent.model_validate({"event_id": f"l-{i:07d}", "to": f"lead{i}@receiver.example", "subject": "Hi", "html": body})
    message = RenderedMessage(event=event, subject="Hi", html=body, text=body, message_id=f"<l{i}@sender.example>")
    account = ("alpha", "beta", "gamma")[i % 3]
    return RoutedMessage(
        message=message,
        account=account,
        route="default",
        from_addr=f"{account}@sender.example",
        envelope_from=f"{account}@sender.example",
        first_attempt_at=time.time(),
    )


def run(work: Path) -> dict[str, Any]:
    calls = LoopCalls()
    calls.install()
    (work / "redis").mkdir(parents=True, exist_ok=True)
    server = LocalRedis(work / "redis").start()
    sink = SmtpSink().start()
    thread: EventLoopThread | None = None
    config_before = os.environ.get(CONFIG_ENV)
    try:
        path = write_scenario(work, server.url, sink.port, Settings())
        os.environ[CONFIG_ENV] = str(path)  # the actor builds its context from it (restored at the end)
        config = load_config(path)
        broker = make_broker(config.broker)
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        thread = EventLoopThread(logging.getLogger("mailpipe.bench.loop"))
        thread.start(timeout=5)
        set_event_loop_thread(thread)
        thread.run_coroutine(_note_thread(calls))
        ctx = build_context(config)
        emails = THREADS * BATCHES * BATCH
        for start in range(0, emails + 20, 1000):
            ctx.status.accept([routed(i).event for i in range(start, min(emails + 20, start + 1000))])
        actors._send(payload([routed(emails + i).to_json() for i in range(20)]))  # warm: sessions, scripts
        probe = LoopLagProbe(work / "lag")
        probe.after_worker_boot(broker, None)
        time.sleep(0.5)
        calls.seconds.clear()
        started = time.time()

        def push(t: int) -> None:
            for b in range(BATCHES):
                base = (t * BATCHES + b) * BATCH
                actors._send(payload([routed(base + i).to_json() for i in range(BATCH)]))

        pushers = [threading.Thread(target=push, args=(t,)) for t in range(THREADS)]
        for pusher in pushers:
            pusher.start()
        for pusher in pushers:
            pusher.join()
        ended = time.time()
        probe.before_worker_shutdown(broker, None)
        lag = read_lag(work / "lag", started, ended)
        return {
            "emails": emails,
            "seconds": round(ended - started, 2),
            "rate": round(emails / (ended - started)),
            "loop_lag_ms": {"samples": lag.samples, "p50": lag.p50 * 1000, "p99": lag.p99 * 1000, "max": lag.max * 1000},
            "blocking_redis_calls_on_loop": {"calls": len(calls.seconds), "ms": round(sum(calls.seconds) * 1000, 1)},
        }
    finally:
        if config_before is None:
            os.environ.pop(CONFIG_ENV, None)
        else:
            os.environ[CONFIG_ENV] = config_before
        calls.uninstall()
        runtime.reset()
        if thread is not None:
            set_event_loop_thread(None)
            thread.stop()
        sink.stop()
        server.stop()


async def _note_thread(calls: LoopCalls) -> None:
    calls.thread = threading.get_ident()


def main() -> int:
    logging.disable(logging.WARNING)
    print(json.dumps(run(Path(tempfile.mkdtemp(prefix="mailpipe-send-loop-")))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
