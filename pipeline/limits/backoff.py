"""The back-off factor an account's rate is multiplied by after throttle signals.

One rule in two languages: the Lua fragment `pipeline/state/lua/lib/backoff_factor.lua` runs
inside the limiter's, the send gate's and the throttle's scripts; `effective_factor` computes the
same for status and metrics (tests/state/test_backoff_agreement.py holds the two equal).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

MIN_FACTOR = 0.05
RECOVERY_STEP = 0.1
RECOVERY_QUIET = 30.0

# The constants of lua/lib/backoff_factor.lua: a script that includes it passes these to `load`.
LUA_CONSTANTS = {"MIN_FACTOR": MIN_FACTOR, "RECOVERY_STEP": RECOVERY_STEP, "RECOVERY_QUIET": RECOVERY_QUIET}


def effective_factor(state: Mapping[str, str], now: float) -> float:
    """The Lua fragment `backoff_factor(state, now)` in Python, for status and metrics."""
    factor = _number(state.get("rate_factor")) or 1.0
    if factor <= 0:
        factor = 1.0
    last = _number(state.get("last_throttle"))
    if last is not None and factor < 1:
        steps = math.floor((now - last) / RECOVERY_QUIET)
        if steps > 0:
            factor = min(1.0, factor + steps * RECOVERY_STEP)
    return max(MIN_FACTOR, factor)


def _number(text: str | None) -> float | None:
    """A stored number as Lua's `tonumber` reads it: None (Lua's nil) when absent or not a number."""
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
