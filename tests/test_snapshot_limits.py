"""`mailpipe status` and the daily-cap metric show the limits the send gate enforces, from the same resolution."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import redis

from pipeline.config import load_config, resolve_account
from pipeline.observe import snapshot
from pipeline.plugin_host.manager import get_plugin_manager, preset_for
from pipeline.plugin_host.presets import Limits


def test_a_gmail_workspace_account_is_shown_with_the_cap_the_gate_holds_it_to(
    write_config: Callable[..., Path], redis_client: redis.Redis, monkeypatch: object
) -> None:
    accounts = """
[[accounts]]
name = "ws"
provider = "gmail"
username = "ws@corp.example"
password = "env:TEST_PW_ALPHA"
from_email = "ws@corp.example"
options = { workspace = true }

[[accounts]]
name = "plain"
provider = "gmail"
username = "me@gmail.com"
password = "env:TEST_PW_ALPHA"
from_email = "me@gmail.com"
"""
    config = load_config(write_config(accounts=accounts, routes="", default="plain"))
    pm = get_plugin_manager(config)
    enforced = {a.name: resolve_account(a, preset_for(a, pm)).limits for a in config.accounts}
    shown = {v.name: v for v in snapshot.accounts(redis_client, config, snapshot.account_limits(config), 0.0)}
    assert enforced["ws"].per_day != enforced["plain"].per_day  # the workspace variant really differs
    for name in ("ws", "plain"):
        assert shown[name].daily_cap == enforced[name].per_day


def test_the_configured_rate_is_the_tightest_of_second_minute_and_hour() -> None:
    assert snapshot.configured_rate(Limits(per_second=10, per_minute=60)) == 1.0
    assert snapshot.configured_rate(Limits(per_hour=360)) == 0.1
    assert snapshot.configured_rate(Limits(per_second=2)) == 2.0
    assert snapshot.configured_rate(Limits(per_day=100)) is None
