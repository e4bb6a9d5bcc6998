"""The slot limiter on a real Redis: spacing per scope, minute/hour spacing, horizon, jitter."""

from __future__ import annotations

import itertools

import pytest

from pipeline.config import ResolvedAccount
from pipeline.context import StageContext
from pipeline.limits.quota import Scope
from pipeline.limits.ratelimit import HORIZON, RateLimiter, configured_rate, effective_rate, interval
from pipeline.plugin_host.presets import Limits


def with_limits(ctx: StageContext, name: str, **limits: float) -> ResolvedAccount:
    return ctx.account(name).model_copy(update={"limits": Limits(**limits)})


def test_the_interval_is_the_largest_of_the_per_window_intervals() -> None:
    assert interval(Limits(per_second=10)) == pytest.approx(0.1)
    assert interval(Limits(per_second=10, per_minute=300)) == pytest.approx(0.2)
    assert interval(Limits(per_second=10, per_hour=3600)) == pytest.approx(1.0)
    assert interval(Limits(per_day=100)) == 0.0
    assert configured_rate(Limits(per_minute=120)) == pytest.approx(2.0)
    assert effective_rate(Limits(per_second=20), 0.25) == pytest.approx(5.0)


def test_a_per_minute_limit_spaces_messages_over_the_minute_instead_of_bursting(ctx: StageContext) -> None:
    account = with_limits(ctx, "alpha", per_second=100, per_minute=120)
    assert ctx.limiter.reserve(account, 4, now=1000.0) == pytest.approx([0.0, 0.5, 1.0, 1.5], abs=1e-6)


def test_accounts_of_one_provider_share_the_provider_limit(ctx: StageContext) -> None:
    provider = Scope("provider", "ses", Limits(per_second=10))
    alpha = Scope("account", "alpha", Limits(per_second=100))
    beta = Scope("account", "beta", Limits(per_second=100))
    slots = ctx.limiter.reserve_slots([[alpha, provider], [beta, provider], [alpha, provider], [beta, provider]], now=1000.0)
    assert [s.delay for s in slots] == pytest.approx([0.0, 0.1, 0.2, 0.3], abs=1e-6)


def test_a_recipient_domain_limit_holds_across_accounts_while_other_domains_flow(ctx: StageContext) -> None:
    gmail = Scope("domain", "gmail.com", Limits(per_second=2))
    alpha = Scope("account", "alpha", Limits(per_second=100))
    beta = Scope("account", "beta", Limits(per_second=100))
    slots = ctx.limiter.reserve_slots([[alpha, gmail], [beta, gmail], [alpha], [beta]], now=1000.0)
    assert [s.delay for s in slots] == pytest.approx([0.0, 0.5, 0.01, 0.51], abs=1e-6)  # each account keeps its order


def test_slots_beyond_the_horizon_are_not_reserved_and_come_back_before_their_turn(ctx: StageContext) -> None:
    account = with_limits(ctx, "alpha", per_second=10)
    slots = ctx.limiter.reserve_slots([[Scope("account", "alpha", account.limits)]] * 40, now=1000.0)
    reserved = [s for s in slots if s.reserved]
    assert len(reserved) >= HORIZON * 10 and all(s.delay <= HORIZON for s in reserved)
    waiting = [s for s in slots if not s.reserved]
    assert all(HORIZON / 2 - 0.5 <= s.delay <= 4.0 - HORIZON / 2 for s in waiting)
    assert [s.delay for s in waiting] == sorted(s.delay for s in waiting)
    # the unreserved ones did not move the schedule: the next caller continues after the reserved ones
    [after] = ctx.limiter.reserve(account, 1, now=1000.0)
    assert after == pytest.approx(reserved[-1].delay + 0.1, abs=1e-6)


def test_jitter_only_lengthens_the_gaps(ctx: StageContext) -> None:
    limiter = RateLimiter(ctx.redis, jitter_ms=200)
    account = with_limits(ctx, "alpha", per_second=10)
    delays = limiter.reserve(account, 6, now=1000.0)
    gaps = [b - a for a, b in itertools.pairwise(delays)]
    assert all(0.1 - 1e-6 <= g <= 0.3 + 1e-6 for g in gaps)
    assert len({round(g, 4) for g in gaps}) > 1


def test_the_back_off_factor_recovers_a_step_per_quiet_period(ctx: StageContext) -> None:
    account = with_limits(ctx, "beta", per_second=10)
    ctx.redis.hset("mailpipe:default:account:beta", mapping={"rate_factor": 0.5, "last_throttle": 1000.0})
    assert ctx.limiter.reserve(account, 2, now=1010.0) == pytest.approx([0.0, 0.2], abs=1e-6)
    assert ctx.limiter.reserve(account, 2, now=1100.0) == pytest.approx([0.0, 1 / 8], abs=1e-6)  # 3 quiet periods: 0.8
    assert ctx.limiter.reserve(account, 2, now=1200.0) == pytest.approx([0.0, 0.1], abs=1e-6)  # fully recovered
