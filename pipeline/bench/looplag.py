"""Event-loop lag probe: how late the send stage's event loop wakes a 10 ms timer.

A worker process started with `MAILPIPE_LOOP_LAG_DIR` set runs `LoopLagProbe` (added by
`make_broker`): once Dramatiq's event-loop thread runs, a task on it sleeps 10 ms over and over and
records how late each wake-up came. Whatever holds the loop — a blocking Redis call, a long
callback, CPU work between awaits — delays every callback queued behind it by as much, and shows
up here whole. A flusher thread (never the loop) appends the samples every second to
`<dir>/lag-<pid>.txt` as `wall_time lag_seconds` lines; `read_lag` gathers them for one phase of
the benchmark. Off unless the variable is set: nothing runs in production workers.
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dramatiq
from dramatiq.asyncio import get_event_loop_thread

LAG_DIR_ENV = "MAILPIPE_LOOP_LAG_DIR"
INTERVAL = 0.010
FLUSH_EVERY = 1.0


class LoopLagProbe(dramatiq.Middleware):
    """A 10 ms timer on the worker's event loop, its lateness written to a file per process."""

    def __init__(self, directory: str | os.PathLike[str], interval: float = INTERVAL) -> None:
        self.directory = Path(directory)
        self.interval = interval
        self._samples: deque[tuple[float, float]] = deque()
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        self._task: Any = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        thread = get_event_loop_thread()
        if thread is None:  # no AsyncIO middleware: no loop to probe
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        self._stop.clear()
        self._task = asyncio.run_coroutine_threadsafe(self._probe(), thread.loop)
        self._flusher = threading.Thread(target=self._flush_loop, name="mailpipe-loop-lag", daemon=True)
        self._flusher.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
        if self._flusher is not None:
            self._flusher.join(timeout=2)
        self._flush()

    async def _probe(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stop.is_set():
            due = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            self._samples.append((time.time(), max(0.0, loop.time() - due)))

    def _flush_loop(self) -> None:
        while not self._stop.wait(FLUSH_EVERY):
            self._flush()

    def _flush(self) -> None:
        lines = []
        while self._samples:
            at, lag = self._samples.popleft()
            lines.append(f"{at:.4f} {lag:.6f}\n")
        if lines:
            with open(self.directory / f"lag-{os.getpid()}.txt", "a", encoding="ascii") as out:
                out.writelines(lines)


def probe_from_env() -> LoopLagProbe | None:
    directory = os.environ.get(LAG_DIR_ENV)
    return LoopLagProbe(directory) if directory else None


@dataclass(frozen=True)
class LoopLag:
    """Lateness of the 10 ms timer over one phase, all worker processes together (seconds)."""

    samples: int
    p50: float
    p99: float
    max: float

    @classmethod
    def of(cls, lags: Iterable[float]) -> LoopLag:
        ordered = sorted(lags)
        if not ordered:
            return cls(0, math.nan, math.nan, math.nan)

        def rank(pct: float) -> float:
            return ordered[max(1, math.ceil(pct / 100 * len(ordered))) - 1]

        return cls(len(ordered), rank(50), rank(99), ordered[-1])


def read_lag(directory: Path, since: float, until: float) -> LoopLag:
    """Every process's samples taken between `since` and `until` (wall clock)."""
    lags: list[float] = []
    for path in sorted(directory.glob("lag-*.txt")):
        for line in path.read_text(encoding="ascii").splitlines():
            at, _, lag = line.partition(" ")
            try:
                when, value = float(at), float(lag)
            except ValueError:
                continue  # a line cut short by a process that was killed mid-write
            if since <= when <= until:
                lags.append(value)
    return LoopLag.of(lags)
