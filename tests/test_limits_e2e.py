"""Limits through real worker processes, real Redis and the real SMTP fixture (its own timestamps)."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
import typer
from eventually import eventually, wait_until_final
from testbed import SMTP_USERS, account_toml
from typer.testing import CliRunner

from pipeline.cli.account_control import register
from pipeline.config import load_config
from pipeline.limits.quota import Window, next_reset
from pipeline.smtp.devsmtp import DevSMTPServer, ReceivedMessage, TLSFiles
from pipeline.state import keys
from pipeline.state.status import StatusStore
from pipeline.submit import Submitter

pytestmark = pytest.mark.slow


def accounts_cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def run_cli(*args: str) -> str:
    result = CliRunner().invoke(accounts_cli(), list(args), env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    return result.output


def accounts(smtp_server: DevSMTPServer, tls_files: TLSFiles, **limits: str) -> str:
    """alpha/beta/gamma on the SMTP fixture; limits maps a name to its TOML limits table."""
    port = smtp_server.ports["starttls"]
    out = ""
    for name in SMTP_USERS:
        text = account_toml(name, port, tls_files.ca_file)
        if name in limits:
            text = text.replace("limits = { per_second = 500 }", f"limits = {limits[name]}")
        out += text
    return out


def lead(i: int, prefix: str, **fields: str) -> dict[str, object]:
    address = f"{prefix}{i}@receiver.example"
    return {"event_id": f"{prefix}-{i:04d}", "to": address, "subject": f"Hi {i}", "text": "Hello.", **fields}


def max_in_any_window(times: list[float], window: float = 1.0) -> int:
    """The most messages the server received in any sliding window (by its own timestamps)."""
    times = sorted(times)
    best, end = 0, 0
    for start, at in enumerate(times):
        while end < len(times) and times[end] < at + window:
            end += 1
        best = max(best, end - start)
    return best


def warm_up(config_path: Path, smtp_server: DevSMTPServer, redis_client: redis.Redis) -> None:
    """Workers booted and SMTP sessions open, through gamma (not the account under test)."""
    report = Submitter(load_config(config_path)).submit([lead(i, "warm") for i in range(8)])
    assert set(wait_until_final(StatusStore(redis_client), report.accepted, timeout=60).values()) == {"sent"}
    smtp_server.clear()


def test_four_worker_processes_hold_an_account_to_twenty_per_second(
    write_config: Callable[..., Path],
    smtp_server: DevSMTPServer,
    tls_files: TLSFiles,
    start_workers: Callable[..., object],
    redis_client: redis.Redis,
    record_property: Callable[[str, object], None],
) -> None:
    path = write_config(accounts=accounts(smtp_server, tls_files, alpha="{ per_second = 20 }"))
    start_workers(path, processes=4, threads=8)
    warm_up(path, smtp_server, redis_client)

    started = time.time()
    report = Submitter(load_config(path)).submit([lead(i, "rate", list="nordics") for i in range(400)])
    smtp_server.wait_for(400, timeout=90)  # cheap polling: the server's thread keeps its timing
    outcomes = wait_until_final(StatusStore(redis_client), report.accepted, timeout=30)
    received = [m for m in smtp_server.snapshot() if m.auth_user == "alpha"]

    assert Counter(outcomes.values()) == {"sent": 400} and len(received) == 400
    times = [m.at for m in received]
    peak = max_in_any_window(times)
    run = max(times) - started
    record_property("max_per_1s_window", peak)
    record_property("run_seconds", round(run, 2))
    record_property("span_seconds", round(max(times) - min(times), 2))
    print(f"\nrate 20/s x 400: max in any 1 s window {peak}, run {run:.2f} s, first→last {max(times) - min(times):.2f} s")
    assert peak <= 22
    assert 19.0 <= run <= 25.0


def test_daily_caps_send_exactly_the_cap_per_account_and_the_rest_waits_for_the_reset(
    write_config: Callable[..., Path],
    smtp_server: DevSMTPServer,
    tls_files: TLSFiles,
    start_workers: Callable[..., object],
    redis_client: redis.Redis,
) -> None:
    capped = "{ per_second = 50, per_day = 50 }"
    routes = '\n[[routes]]\nname = "pool"\nmatch = { campaign = "pool" }\naccounts = ["alpha", "beta"]\n'
    path = write_config(accounts=accounts(smtp_server, tls_files, alpha=capped, beta=capped), routes=routes)
    start_workers(path, processes=2, threads=8)
    report = Submitter(load_config(path)).submit([lead(i, "cap", campaign="pool") for i in range(130)])
    status = StatusStore(redis_client)

    eventually(lambda: len(smtp_server.snapshot()), lambda n: n >= 100, timeout=60)
    time.sleep(3)  # anything that would wrongly go through has had time to
    received = smtp_server.snapshot()
    assert Counter(m.auth_user for m in received) == {"alpha": 50, "beta": 50}
    outcomes = status.outcomes(report.accepted)
    assert Counter(outcomes.values()) == {"sent": 100, None: 30}

    waiting = [e for e, o in outcomes.items() if o is None]
    reset = next_reset(Window.DAY, time.time(), "UTC")
    scores = [redis_client.zscore(keys.pending("default"), e) for e in waiting]
    assert all(s is not None and s >= reset - 5 for s in scores)  # due again at the reset, not failed

    rows = {r["name"]: r for r in json.loads(run_cli("status", "--json"))}
    assert (rows["alpha"]["sent_today"], rows["alpha"]["daily_cap"]) == (50, 50)
    assert rows["alpha"]["next_reset"] == reset and rows["beta"]["next_reset"] == reset
    assert rows["gamma"]["next_reset"] is None
    table = run_cli("status")
    midnight = time.strftime("%Y-%m-%d 00:00:00", time.gmtime(reset))
    assert "50 / 50" in table and table.count(midnight) == 2


def test_a_throttling_server_slows_the_account_below_its_limit_and_every_message_is_sent(
    write_config: Callable[..., Path],
    smtp_server: DevSMTPServer,
    tls_files: TLSFiles,
    start_workers: Callable[..., object],
    redis_client: redis.Redis,
    record_property: Callable[[str, object], None],
) -> None:
    accepted: deque[float] = deque()
    throttled: list[float] = []
    lock = threading.Lock()

    def over_ten_per_second(address: str, server: DevSMTPServer) -> str | None:
        if not address.startswith("thr"):
            return None
        now = time.time()
        with lock:
            while accepted and accepted[0] <= now - 1.0:
                accepted.popleft()
            if len(accepted) >= 10:
                throttled.append(now)
                return "454 Throttling failure: Maximum sending rate exceeded"
            accepted.append(now)
        return None

    smtp_server.rcpt_responder = over_ten_per_second
    path = write_config(accounts=accounts(smtp_server, tls_files, alpha="{ per_second = 16 }"))
    start_workers(path, processes=2, threads=8)
    warm_up(path, smtp_server, redis_client)
    report = Submitter(load_config(path)).submit([lead(i, "thr", list="nordics") for i in range(150)])
    status = StatusStore(redis_client)
    outcomes = wait_until_final(status, report.accepted, timeout=90)

    assert Counter(outcomes.values()) == {"sent": 150}
    assert "bounced" not in status.outcome_counts()
    received: list[ReceivedMessage] = sorted(smtp_server.snapshot(), key=lambda m: m.at)
    assert len(received) == 150 and throttled
    history = [status.get("default", e) for e in report.accepted]
    assert all(h is not None and h.history[-1]["attempt"] == 1 for h in history)  # never a recipient failure
    assert sum(1 for h in history if h and any(x["state"] == "throttled" for x in h.history)) == len(throttled)

    rows = {r["name"]: r for r in json.loads(run_cli("status", "--json"))}
    assert rows["alpha"]["effective_rate"] < 10 <= rows["alpha"]["configured_rate"]
    assert rows["alpha"]["throttles_last_hour"] == len(throttled)
    tail = received[-60:]
    assert max(throttled) < tail[0].at  # the 454s stopped: the last 60 messages saw none
    peak_tail = max_in_any_window([m.at for m in tail])
    record_property("throttles", len(throttled))
    record_property("tail_max_per_1s_window", peak_tail)
    print(
        f"\nthrottling server: {len(throttled)} x 454, last at +{max(throttled) - received[0].at:.1f} s, "
        f"run {received[-1].at - received[0].at:.1f} s, effective {rows['alpha']['effective_rate']:.1f}/s, "
        f"tail peak {peak_tail}/s"
    )
    assert peak_tail <= 10


def test_a_paused_account_sends_nothing_and_drains_after_resume(
    write_config: Callable[..., Path],
    smtp_server: DevSMTPServer,
    tls_files: TLSFiles,
    start_workers: Callable[..., object],
    redis_client: redis.Redis,
) -> None:
    path = write_config(
        accounts=accounts(smtp_server, tls_files, alpha="{ per_second = 20 }"), extra="[rate_limit]\npaused_recheck = 1\n"
    )
    start_workers(path, processes=2, threads=8)
    warm_up(path, smtp_server, redis_client)
    report = Submitter(load_config(path)).submit([lead(i, "pause", list="nordics") for i in range(120)])
    eventually(lambda: len(smtp_server.snapshot()), lambda n: n >= 20, timeout=30)
    run_cli("pause", "alpha", "--reason", "operator test")
    paused_at = time.time()
    time.sleep(4)
    during = [m for m in smtp_server.snapshot() if m.at > paused_at + 0.2]
    sent_before = len(smtp_server.snapshot())
    assert during == [] and sent_before < 120
    assert "paused (operator test)" in run_cli("status")
    outcomes = StatusStore(redis_client).outcomes(report.accepted)
    assert Counter(o for o in outcomes.values()) == {"sent": sent_before, None: 120 - sent_before}

    run_cli("resume", "alpha")
    outcomes = wait_until_final(StatusStore(redis_client), report.accepted, timeout=60)
    assert Counter(outcomes.values()) == {"sent": 120}
    assert Counter(m.auth_user for m in smtp_server.snapshot()) == {"alpha": 120}
