"""Choosing an account inside a route's pool: strategies, skipping unavailable accounts, waiting."""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from testbed import SMTP_USERS, account_toml

from pipeline.config import load_config
from pipeline.context import StageContext, build_context
from pipeline.limits.quota import Window, counter_key, next_reset, read_usage, scopes_for
from pipeline.models import LeadEvent, RenderedMessage, RouteRequest
from pipeline.smtp.devsmtp import DevSMTPServer, TLSFiles
from pipeline.stages import route as route_stage


def pool_ctx(
    write_config: Callable[..., Path],
    smtp_server: DevSMTPServer,
    tls_files: TLSFiles,
    strategy: str,
    *,
    per_day: int = 5,
    extra: str = "",
) -> StageContext:
    port = smtp_server.ports["starttls"]
    accounts = "".join(
        account_toml(n, port, tls_files.ca_file, extra=f"weight = {3 if n == 'alpha' else 1}").replace(
            "limits = { per_second = 500 }", f"limits = {{ per_second = {min(500, per_day)}, per_day = {per_day} }}"
        )
        for n in SMTP_USERS
    )
    routes = f"""
[[routes]]
name = "pool"
match = {{ campaign = "pool" }}
accounts = ["alpha", "beta"]
strategy = "{strategy}"
"""
    return build_context(load_config(write_config(accounts=accounts, routes=routes, extra=extra)))


def request(i: int) -> RouteRequest:
    fields = {"event_id": f"r{i}", "to": f"l{i}@receiver.example", "subject": "s", "text": "t", "campaign": "pool"}
    event = LeadEvent.model_validate(fields)
    return RouteRequest(message=RenderedMessage(event=event, subject="s", text="t", message_id=f"<r{i}@x>"))


def use(ctx: StageContext, account: str, count: int) -> None:
    scope = scopes_for(ctx.account(account), None, ctx.config.rate_limit)[0]
    ctx.redis.set(counter_key(scope, Window.DAY, time.time(), ctx.config.rate_limit.timezone), count)


_recipients = itertools.count()


def picks(ctx: StageContext, n: int) -> Counter[str]:
    """Route n mails to new recipients (a campaign's follow-ups to the same ones would be sticky)."""
    forwards = route_stage.handle([request(next(_recipients)) for _ in range(n)], ctx).forwards
    return Counter(f.item.split('"account":"')[1].split('"')[0] for f in forwards if f.stage == "rate_limit")


def test_least_used_today_balances_a_batch_and_prefers_the_less_used_account(write_config, smtp_server, tls_files) -> None:  # type: ignore[no-untyped-def]
    ctx = pool_ctx(write_config, smtp_server, tls_files, "least_used_today", per_day=1000)
    assert picks(ctx, 10) == {"alpha": 5, "beta": 5}
    use(ctx, "alpha", 6)
    assert picks(ctx, 10) == {"alpha": 2, "beta": 8}


def test_round_robin_alternates_and_skips_a_paused_account(write_config, smtp_server, tls_files) -> None:  # type: ignore[no-untyped-def]
    ctx = pool_ctx(write_config, smtp_server, tls_files, "round_robin")
    assert picks(ctx, 4) == {"alpha": 2, "beta": 2}
    ctx.accounts_state.pause("beta", "test")
    assert picks(ctx, 4) == {"alpha": 4}


def test_weighted_follows_the_weights(write_config, smtp_server, tls_files) -> None:  # type: ignore[no-untyped-def]
    ctx = pool_ctx(write_config, smtp_server, tls_files, "weighted", per_day=10_000)
    counts = picks(ctx, 400)
    assert 0.65 < counts["alpha"] / 400 < 0.85  # weight 3 : 1


def test_an_account_at_its_daily_cap_is_skipped(write_config, smtp_server, tls_files) -> None:  # type: ignore[no-untyped-def]
    ctx = pool_ctx(write_config, smtp_server, tls_files, "round_robin", per_day=5)
    use(ctx, "alpha", 5)
    assert picks(ctx, 6) == {"beta": 6}


def test_when_every_account_is_at_its_cap_the_message_waits_until_the_earliest_reset(  # type: ignore[no-untyped-def]
    write_config, smtp_server, tls_files
) -> None:
    tokyo = '[rate_limit]\ntimezone = "Asia/Tokyo"\n'
    ctx = pool_ctx(write_config, smtp_server, tls_files, "least_used_today", per_day=5, extra=tokyo)
    use(ctx, "alpha", 5)
    use(ctx, "beta", 5)
    now = time.time()
    decision = route_stage.route(request(1), ctx, suppressed=None, paused={})
    reset = next_reset(Window.DAY, now, "Asia/Tokyo")
    assert decision.routed is None and decision.wait == pytest.approx(reset - now, abs=2)
    usage = read_usage(ctx.redis, [ctx.account("alpha")], ctx.config.rate_limit)["alpha"]
    assert usage.exhausted_until == reset


def test_a_paused_pool_is_rechecked_after_paused_recheck(write_config, smtp_server, tls_files) -> None:  # type: ignore[no-untyped-def]
    ctx = pool_ctx(write_config, smtp_server, tls_files, "least_used_today", extra="[rate_limit]\npaused_recheck = 2.5\n")
    use(ctx, "alpha", 5)
    ctx.accounts_state.pause("beta", "test")
    decision = route_stage.route(request(1), ctx, suppressed=None, paused={})
    assert decision.routed is None and decision.wait == 2.5


def test_a_campaigns_follow_ups_stick_to_the_first_mailbox_and_wait_when_it_is_paused(
    write_config, smtp_server, tls_files
) -> None:  # type: ignore[no-untyped-def]
    ctx = pool_ctx(write_config, smtp_server, tls_files, "round_robin")
    first = {
        f.item.split('"to":"')[1].split('"')[0]: f
        for f in route_stage.handle([request(i) for i in range(900, 904)], ctx).forwards
    }
    chosen = {to: f.item.split('"account":"')[1].split('"')[0] for to, f in first.items()}
    assert set(chosen.values()) == {"alpha", "beta"}
    for _ in range(2):  # two follow-ups, each from the mailbox of the first message
        again = route_stage.handle([request(i) for i in range(900, 904)], ctx).forwards
        assert {f.item.split('"to":"')[1].split('"')[0]: f.item.split('"account":"')[1].split('"')[0] for f in again} == chosen
    ctx.accounts_state.pause("beta", "test")
    waiting = route_stage.handle([request(i) for i in range(900, 904)], ctx).forwards
    stages = Counter((f.stage, chosen[f.item.split('"to":"')[1].split('"')[0]]) for f in waiting)
    assert stages == {("rate_limit", "alpha"): 2, ("route", "beta"): 2}  # beta's recipients wait for beta


def test_a_message_that_failed_on_its_sticky_mailbox_is_routed_elsewhere_and_the_new_one_remembered(
    write_config, smtp_server, tls_files
) -> None:  # type: ignore[no-untyped-def]
    ctx = pool_ctx(write_config, smtp_server, tls_files, "round_robin")
    first = route_stage.handle([request(950)], ctx).forwards[0]
    account = first.item.split('"account":"')[1].split('"')[0]
    other = "beta" if account == "alpha" else "alpha"
    rerouted = request(950).model_copy(update={"excluded_accounts": [account]})  # e.g. it met a 535 there
    again = route_stage.handle([rerouted], ctx).forwards[0]
    assert again.stage == "rate_limit" and f'"account":"{other}"' in again.item
    follow_up = route_stage.handle([request(950)], ctx).forwards[0]
    assert f'"account":"{other}"' in follow_up.item  # the mailbox that will really send it first
