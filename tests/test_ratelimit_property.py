"""Property test of the limiter arithmetic, on the real Lua script in a real Redis."""

from __future__ import annotations

import itertools
import math

import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.limits.quota import Scope
from pipeline.limits.ratelimit import RateLimiter
from pipeline.plugin_host.presets import Limits

calls = st.lists(st.tuples(st.floats(0, 3, allow_nan=False), st.integers(1, 60)), min_size=1, max_size=12)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rate=st.floats(0.2, 500, allow_nan=False), jitter_ms=st.sampled_from([0, 0, 50]), calls=calls)
def test_reserved_slots_never_go_back_are_spaced_by_the_interval_and_fill_no_window_beyond_rate_times_window_plus_one(
    redis_client: redis.Redis, rate: float, jitter_ms: int, calls: list[tuple[float, int]]
) -> None:
    redis_client.flushall()
    limiter = RateLimiter(redis_client, jitter_ms=jitter_ms)
    scope = Scope("account", "prop", Limits(per_second=rate))
    now = 1_000_000.0
    slots: list[float] = []
    for advance, count in calls:
        now += advance
        for slot in limiter.reserve_slots([[scope]] * count, now):
            if slot.reserved:
                assert slot.delay <= limiter.horizon + 1e-6
                slots.append(now + slot.delay)
            else:
                assert slot.delay > 0  # comes back later, never sent now
    interval = 1 / rate
    tolerance = 2e-6  # slots are stored with microsecond precision
    assert all(b >= a - tolerance for a, b in itertools.pairwise(slots))
    assert all(b - a >= interval - tolerance for a, b in itertools.pairwise(slots))
    for window in (1.0, interval * 7.5, 10.0):
        end = 0
        for start, at in enumerate(slots):
            while end < len(slots) and slots[end] < at + window - tolerance:
                end += 1
            assert end - start <= math.floor(rate * window) + 1
