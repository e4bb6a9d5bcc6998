"""Waiting on the real system: poll until done or a deadline, never a bare sleep."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from pipeline.state.status import StatusStore

T = TypeVar("T")


def wait_until_final(
    status: StatusStore, event_ids: list[str], timeout: float = 60.0, tenant: str = "default"
) -> dict[str, str | None]:
    deadline = time.monotonic() + timeout
    outcomes = status.outcomes(event_ids, tenant)
    while time.monotonic() < deadline and any(v is None for v in outcomes.values()):
        time.sleep(0.1)
        outcomes = status.outcomes(event_ids, tenant)
    return outcomes


def eventually(probe: Callable[[], T], done: Callable[[T], bool], timeout: float = 30.0, interval: float = 0.1) -> T:
    deadline = time.monotonic() + timeout
    value = probe()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(interval)
        value = probe()
    return value
