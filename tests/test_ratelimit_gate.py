"""The send-time gate on a real Redis: per-second log, caps counted at send time, pause, refunds."""

from __future__ import annotations

import asyncio
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as aioredis

from pipeline.config import RateLimitConfig, ResolvedAccount
from pipeline.context import StageContext
from pipeline.limits.account_state import AccountState
from pipeline.limits.quota import GateResult, GateVerdict, SendGate, Window, next_reset, read_usage
from pipeline.plugin_host.presets import Limits

NOW = datetime(2026, 3, 10, 12, 0, 0, tzinfo=ZoneInfo("UTC")).timestamp()


def takes(
    redis_url: str,
    account: ResolvedAccount,
    times: list[float],
    recipient: str = "lead@receiver.example",
    rate_limit: RateLimitConfig | None = None,
    refund: bool = False,
) -> list[GateResult]:
    async def go() -> list[GateResult]:
        client = aioredis.Redis.from_url(redis_url)
        gate = SendGate(client, rate_limit or RateLimitConfig())
        out = []
        for at in times:
            result = await gate.take(account, recipient, at)
            if refund and result.ok:
                await gate.refund(result)
            out.append(result)
        await client.aclose()
        return out

    return asyncio.run(go())


def account(ctx: StageContext, name: str = "alpha", **limits: float) -> ResolvedAccount:
    return ctx.account(name).model_copy(update={"limits": Limits(**limits)})


def test_the_per_second_log_admits_the_rate_in_any_second_and_names_when_to_retry(ctx: StageContext, redis_url: str) -> None:
    times = [NOW + i * 0.2 for i in range(5)] + [NOW + 0.9, NOW + 1.001]
    results = takes(redis_url, account(ctx, per_second=5), times)
    assert [r.verdict for r in results] == [GateVerdict.OK] * 5 + [GateVerdict.EARLY, GateVerdict.OK]
    assert results[5].until == pytest.approx(NOW + 1.0)


def test_mail_arriving_in_a_bunch_passes_the_gate_at_most_three_back_to_back(ctx: StageContext, redis_url: str) -> None:
    results = takes(redis_url, account(ctx, per_second=5), [NOW + i * 0.01 for i in range(5)])
    assert [r.verdict for r in results] == [GateVerdict.OK] * 3 + [GateVerdict.EARLY] * 2
    assert results[3].until == pytest.approx(NOW + 0.2)


def test_a_daily_cap_is_taken_at_send_time_and_resets_at_midnight_in_the_configured_zone(
    ctx: StageContext, redis_url: str
) -> None:
    zone = "America/New_York"
    limits = RateLimitConfig(timezone=zone)
    capped = account(ctx, per_day=3)
    midnight = next_reset(Window.DAY, NOW, zone)
    assert datetime.fromtimestamp(midnight, ZoneInfo(zone)).strftime("%H:%M") == "00:00"
    results = takes(redis_url, capped, [NOW, NOW + 1, NOW + 2, NOW + 3, midnight + 1], rate_limit=limits)
    assert [r.verdict for r in results] == [GateVerdict.OK] * 3 + [GateVerdict.CAP, GateVerdict.OK]
    assert results[3].window == Window.DAY and results[3].until == midnight and results[3].account_blocked
    usage = read_usage(ctx.redis, [capped], limits, NOW + 4)["alpha"]
    assert (usage.sent_today, usage.available, usage.exhausted_until) == (3, False, midnight)


def test_hour_and_minute_caps_are_hard(ctx: StageContext, redis_url: str) -> None:
    results = takes(redis_url, account(ctx, per_minute=2, per_hour=3), [NOW, NOW + 1, NOW + 2, NOW + 61, NOW + 122])
    assert [r.verdict for r in results] == [GateVerdict.OK, GateVerdict.OK, GateVerdict.CAP, GateVerdict.OK, GateVerdict.CAP]
    assert results[2].window == Window.MINUTE and results[4].window == Window.HOUR


def test_a_refused_message_gives_its_count_back(ctx: StageContext, redis_url: str) -> None:
    capped = account(ctx, per_day=2)
    takes(redis_url, capped, [NOW, NOW + 1, NOW + 2], refund=True)
    assert read_usage(ctx.redis, [capped], RateLimitConfig(), NOW + 3)["alpha"].sent_today == 0


def test_a_paused_account_sends_nothing_at_the_gate(ctx: StageContext, redis_url: str) -> None:
    AccountState(ctx.redis).pause("alpha", "operator")
    [result] = takes(redis_url, account(ctx, per_second=100), [NOW])
    assert result.verdict == GateVerdict.PAUSED and result.account_blocked
    AccountState(ctx.redis).resume("alpha")
    assert takes(redis_url, account(ctx, per_second=100), [NOW])[0].ok


def test_a_domain_cap_waits_for_the_domain_not_for_another_account(ctx: StageContext, redis_url: str) -> None:
    limits = RateLimitConfig(domains={"Gmail.com": Limits(per_hour=1)})
    results = takes(redis_url, account(ctx), [NOW, NOW + 1], recipient="a@gmail.com", rate_limit=limits)
    assert [r.verdict for r in results] == [GateVerdict.OK, GateVerdict.CAP]
    assert results[1].scope is not None and results[1].scope.key == "domain:gmail.com" and not results[1].account_blocked
    assert takes(redis_url, account(ctx), [NOW + 2], recipient="a@other.example", rate_limit=limits)[0].ok


def test_the_back_off_factor_shrinks_the_per_second_log(ctx: StageContext, redis_url: str) -> None:
    ctx.redis.hset("mailpipe:default:account:alpha", mapping={"rate_factor": 0.5, "last_throttle": NOW})
    results = takes(redis_url, account(ctx, per_second=4), [NOW + i * 0.01 for i in range(3)])
    assert [r.verdict for r in results] == [GateVerdict.OK, GateVerdict.OK, GateVerdict.EARLY]
