"""The back-off factor in Python (status, metrics) and in Lua (limiter, gate, throttle) agree."""

from __future__ import annotations

import redis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipeline.limits import backoff
from pipeline.state import lua_scripts
from pipeline.state.lua_scripts import LuaScript

# The fragment as the limiter's scripts include it, returned at full precision.
FACTOR = LuaScript.from_source(
    "backoff_factor_probe",
    "-- KEYS[1] an account state hash\n-- ARGV[1] now\n-- Returns the factor ('%.17g').\n\n"
    "--#include backoff_factor\n"
    "return string.format('%.17g', backoff_factor(KEYS[1], tonumber(ARGV[1])))",
    **backoff.LUA_CONSTANTS,
)

NOW = 1_700_000_000.0
stored_number = st.floats(-2, 3, allow_nan=False).map(lambda f: f"{f:.6f}")  # what throttle_record writes
junk = st.text(alphabet="abcdfgh -", max_size=6)  # not a number to Lua nor to Python
rate_factor = st.one_of(st.none(), stored_number, st.sampled_from(["", "0", "1", "0.05", "1e-3"]), junk)
seconds_ago = st.one_of(st.floats(-60, 3600, allow_nan=False), st.sampled_from([0.0, 29.999999, 30.0, 60.0, 270.0]))
last_throttle = st.one_of(st.none(), seconds_ago.map(lambda ago: f"{NOW - ago:.6f}"), junk)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rate_factor=rate_factor, last_throttle=last_throttle, now_offset=st.floats(0, 1, allow_nan=False))
@example(rate_factor="0.500000", last_throttle=f"{NOW - 30:.6f}", now_offset=0.0)  # exactly one quiet period
@example(rate_factor="0.010000", last_throttle=None, now_offset=0.0)  # below the floor
@example(rate_factor="-1.000000", last_throttle=f"{NOW:.6f}", now_offset=0.0)  # not a factor at all
def test_effective_factor_equals_the_lua_fragment(
    redis_client: redis.Redis, rate_factor: str | None, last_throttle: str | None, now_offset: float
) -> None:
    state = {k: v for k, v in (("rate_factor", rate_factor), ("last_throttle", last_throttle)) if v is not None}
    redis_client.delete("state")
    for field, value in state.items():
        redis_client.hset("state", field, value)
    now = NOW + now_offset
    in_lua = float(lua_scripts.run(redis_client, FACTOR.bind(keys=["state"], args=[repr(now)])))
    assert backoff.effective_factor(state, now) == in_lua
    assert in_lua >= backoff.MIN_FACTOR
