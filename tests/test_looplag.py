"""The benchmark's event-loop lag probe sees a blocking call on the loop, and only inside the phase window."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

from dramatiq.asyncio import EventLoopThread, set_event_loop_thread
from dramatiq.brokers.stub import StubBroker

from pipeline.bench.looplag import LoopLag, LoopLagProbe, read_lag


def test_a_blocking_call_on_the_loop_shows_as_lag_of_its_length(tmp_path: Path) -> None:
    thread = EventLoopThread(logging.getLogger("test"))
    thread.start(timeout=5)
    set_event_loop_thread(thread)
    probe = LoopLagProbe(tmp_path)
    broker = StubBroker()
    try:
        probe.after_worker_boot(broker, None)
        time.sleep(0.3)
        quiet_until = time.time()
        thread.loop.call_soon_threadsafe(time.sleep, 0.25)  # what a blocking Redis call does to the loop
        time.sleep(0.5)
    finally:
        probe.before_worker_shutdown(broker, None)
        set_event_loop_thread(None)
        thread.stop()
    quiet = read_lag(tmp_path, 0, quiet_until)
    everything = read_lag(tmp_path, 0, time.time())
    assert quiet.samples >= 10 and quiet.max < 0.1
    assert 0.2 <= everything.max < 0.5 and everything.samples > quiet.samples


def test_lag_percentiles_use_the_nearest_rank_and_tolerate_no_samples() -> None:
    lag = LoopLag.of([i / 1000 for i in range(1, 101)])
    assert (lag.samples, lag.p50, lag.p99, lag.max) == (100, 0.05, 0.099, 0.1)
    assert math.isnan(LoopLag.of([]).p99)
