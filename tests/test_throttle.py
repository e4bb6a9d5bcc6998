"""Adaptive back-off: multiplicative decrease once per burst, lazy additive recovery, hints."""

from __future__ import annotations

import pytest

from pipeline.context import StageContext
from pipeline.limits.backoff import RECOVERY_QUIET, effective_factor
from pipeline.limits.quota import Window, next_reset, read_usage
from pipeline.limits.throttle import (
    DECREASE_COOLDOWN,
    DEFAULT_WAIT,
    record_throttle,
    throttles_last_hour,
)
from pipeline.plugin_host.presets import Limits

STATE = "mailpipe:default:account:alpha"


def at(ctx: StageContext, now: float) -> StageContext:
    ctx.clock = lambda: now
    return ctx


def state(ctx: StageContext) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in ctx.redis.hgetall(STATE).items()}


def test_a_burst_of_throttles_halves_the_rate_once_and_each_later_burst_halves_it_again(ctx: StageContext) -> None:
    for i in range(5):
        assert (
            record_throttle(ctx.redis, "alpha", None, now=1000.0 + i * 0.1, timezone=ctx.config.rate_limit.timezone)
            == DEFAULT_WAIT
        )
    assert effective_factor(state(ctx), 1001.0) == pytest.approx(0.5)
    record_throttle(ctx.redis, "alpha", None, now=1000.0 + DECREASE_COOLDOWN + 0.1, timezone=ctx.config.rate_limit.timezone)
    assert effective_factor(state(ctx), 1003.0) == pytest.approx(0.25)
    assert throttles_last_hour(ctx.redis, ["alpha", "beta"], 1003.0) == {"alpha": 6, "beta": 0}
    assert throttles_last_hour(ctx.redis, ["alpha"], 1000.0 + 3603.0) == {"alpha": 0}


def test_the_rate_recovers_ten_percent_of_configured_per_quiet_period(ctx: StageContext) -> None:
    record_throttle(ctx.redis, "alpha", None, now=1000.0, timezone=ctx.config.rate_limit.timezone)
    seen = state(ctx)
    assert effective_factor(seen, 1000.0 + RECOVERY_QUIET - 1) == pytest.approx(0.5)
    assert effective_factor(seen, 1000.0 + RECOVERY_QUIET * 2) == pytest.approx(0.7)
    assert effective_factor(seen, 1000.0 + RECOVERY_QUIET * 10) == pytest.approx(1.0)
    record_throttle(
        ctx.redis, "alpha", None, now=1000.0 + RECOVERY_QUIET * 2, timezone=ctx.config.rate_limit.timezone
    )  # from the recovered 0.7
    assert effective_factor(state(ctx), 1000.0 + RECOVERY_QUIET * 2) == pytest.approx(0.35)


def test_retry_after_holds_the_message_and_the_accounts_next_slot(ctx: StageContext) -> None:
    assert record_throttle(ctx.redis, "alpha", 20.0, now=1000.0, timezone=ctx.config.rate_limit.timezone) == 20.0
    account = ctx.account("alpha").model_copy(update={"limits": Limits(per_second=10)})
    assert ctx.limiter.reserve(account, 1, now=1000.0)[0] > 2.0  # beyond the horizon: not reserved now
    assert ctx.limiter.reserve(account, 1, now=1020.0) == [0.0]


def test_a_quota_signal_marks_the_account_exhausted_until_midnight(ctx: StageContext) -> None:
    now = 1_800_000_000.0
    record_throttle(ctx.redis, "alpha", None, now=now, timezone=ctx.config.rate_limit.timezone, quota=True)
    usage = read_usage(ctx.redis, [ctx.account("alpha")], ctx.config.rate_limit, now + 1)["alpha"]
    assert not usage.available and usage.exhausted_until == next_reset(Window.DAY, now, "UTC")
