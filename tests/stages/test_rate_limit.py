"""rate_limit: slots spaced by the account's interval, shared through Redis, no sleeping."""

from __future__ import annotations

import pytest

from pipeline.context import StageContext


def test_reserved_slots_are_spaced_by_the_interval_and_continue_across_calls(ctx: StageContext) -> None:
    account = ctx.account("alpha").model_copy(
        update={"limits": ctx.account("alpha").limits.model_copy(update={"per_second": 20})}
    )
    first = ctx.limiter.reserve(account, 5, now=1000.0)
    second = ctx.limiter.reserve(account, 2, now=1000.0)
    assert first == pytest.approx([0.0, 0.05, 0.1, 0.15, 0.2], abs=1e-6)
    assert second == pytest.approx([0.25, 0.3], abs=1e-6)


def test_an_idle_account_starts_sending_immediately(ctx: StageContext) -> None:
    account = ctx.account("alpha").model_copy(update={"limits": ctx.account("alpha").limits.model_copy(update={"per_second": 2})})
    ctx.limiter.reserve(account, 3, now=1000.0)
    assert ctx.limiter.reserve(account, 1, now=1010.0) == [0.0]


def test_back_off_factor_stretches_the_interval(ctx: StageContext) -> None:
    account = ctx.account("beta").model_copy(update={"limits": ctx.account("beta").limits.model_copy(update={"per_second": 10})})
    ctx.redis.hset("mailpipe:default:account:beta", "rate_factor", 0.5)
    assert ctx.limiter.reserve(account, 3, now=2000.0) == pytest.approx([0.0, 0.2, 0.4], abs=1e-6)
