"""Worker logs of a full run: JSON lines with the journey context, and no secret anywhere."""

from __future__ import annotations

import base64
import json
import os
import signal
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from eventually import eventually, wait_until_final
from metrics_scrape import free_port, parse, scrape_text, value
from testbed import SMTP_USERS

from pipeline.config import load_config
from pipeline.runtime.processes import WorkerProcess
from pipeline.smtp.devsmtp import DevSMTPServer
from pipeline.state.status import StatusStore
from pipeline.submit import Submitter

WRONG_BETA_PASSWORD = "beta-WRONG-pw-7f3a9c"
CARELESS_PLUGIN = """
import base64, logging

import structlog

from pipeline.plugin_host.hookspecs import hookimpl


@hookimpl
def mailpipe_prepare_message(account, message):
    password = account.password.resolve().get_secret_value()
    blob = base64.b64encode(f"\\0{account.username}\\0{password}".encode()).decode()
    try:
        raise RuntimeError(f"login {account.username}:{password} refused")
    except RuntimeError:
        logging.getLogger("careless").warning("retrying after AUTH PLAIN %s", blob, exc_info=True)
        structlog.get_logger("careless").warning("careless_line", password=password, detail=f"the password is {password}")
"""
ROUTES = """
[[routes]]
name = "nordics"
match = { list = "nordics" }
accounts = ["alpha"]

[[routes]]
name = "outreach"
match = { campaign = "outreach" }
accounts = ["beta", "gamma"]
strategy = "round_robin"
"""


def hello_leads(prefix: str, count: int) -> list[dict[str, object]]:
    return [
        {
            "event_id": f"{prefix}-{i}",
            "to": f"l{i}@receiver.example",
            "template": "hello",
            "data": {"first_name": "A", "company": "B"},
        }
        for i in range(count)
    ]


def secret_forms(user: str, password: str) -> set[str]:
    """The password as it could leak: plain, AUTH LOGIN's base64, AUTH PLAIN's base64."""
    return {
        password,
        base64.b64encode(password.encode()).decode(),
        base64.b64encode(f"\0{user}\0{password}".encode()).decode(),
    }


def test_a_full_run_with_an_auth_failure_logs_json_journeys_and_never_a_secret(
    write_config: Callable[..., Path],
    smtp_server: DevSMTPServer,
    start_workers: Callable[..., WorkerProcess],
    redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    port = free_port()
    monkeypatch.setenv("MAILPIPE_METRICS_PORT", str(port))
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "prom"))
    monkeypatch.setenv("MAILPIPE_LOG_LEVEL", "DEBUG")  # dramatiq and aiosmtplib at their most talkative
    plugin = tmp_path / "careless.py"
    plugin.write_text(CARELESS_PLUGIN)  # a plugin that logs the password three ways, exception text included
    monkeypatch.setenv("MAILPIPE_PLUGINS", str(plugin))
    path = write_config(routes=ROUTES)
    monkeypatch.setenv("TEST_PW_BETA", WRONG_BETA_PASSWORD)  # beta's config secret; the server refuses it
    worker = start_workers(path, processes=2, threads=4)
    events = [
        {
            "event_id": f"s-{i}",
            "to": f"lead{i}@receiver.example",
            "template": "hello",
            "data": {"first_name": "A", "company": "B"},
            **({"campaign": "outreach"} if i % 2 else {"list": "nordics"}),
        }
        for i in range(12)
    ]
    report = Submitter(load_config(path)).submit(events)
    outcomes = wait_until_final(StatusStore(redis_client), report.accepted, timeout=90)
    assert Counter(outcomes.values()) == {"sent": 12}
    assert smtp_server.auth_failures >= 1
    metrics_text = eventually(
        lambda: scrape_text(port), lambda t: value(parse(t), "mailpipe_stage_messages_out_total", stage="classify") >= 12
    )
    worker.stop()
    log_text = (tmp_path / "worker-0.log").read_text()

    secrets = {WRONG_BETA_PASSWORD, *(p for u, p in SMTP_USERS.items() if u != "beta")}
    forms = set().union(
        *(
            secret_forms(u, p)
            for u, p in [("beta", WRONG_BETA_PASSWORD), ("alpha", SMTP_USERS["alpha"]), ("gamma", SMTP_USERS["gamma"])]
        )
    )
    assert secrets <= forms
    for form in forms:
        assert form not in log_text, f"a secret form leaked into the worker log: {form[:4]}…"
        assert form not in metrics_text, f"a secret form leaked into /metrics: {form[:4]}…"

    records = [json.loads(line) for line in log_text.splitlines() if line.startswith("{")]
    assert len(records) > 50
    journey = [r for r in records if r["event"] == "stage_done"]
    assert {r["stage"] for r in journey} == {"render", "route", "rate_limit", "send", "classify"}
    assert all(r["event_id"] and r["level"] == "info" for r in journey)
    sends = [r for r in journey if r["stage"] in ("send", "classify")]
    assert all(r["account"] in ("alpha", "beta", "gamma") and r["attempt"] >= 1 for r in sends)
    rerouted = [r for r in journey if r["stage"] == "classify" and r["outcome"] == "rerouted"]
    assert rerouted and all(r["account"] == "beta" for r in rerouted)
    assert value(parse(metrics_text), "mailpipe_account_signals_total", account="beta", signal="auth_failed") >= 1
    assert value(parse(metrics_text), "mailpipe_account_health", account="beta", state="auth_failed") == 1
    assert any(r["logger"].startswith("dramatiq") for r in records), "dramatiq's stdlib lines come through the same formatter"
    careless = [r for r in records if r["logger"] == "careless"]
    assert len(careless) >= 24 and all("[redacted]" in json.dumps(r) for r in careless)
    assert any("RuntimeError: login alpha:[redacted] refused" in r.get("exception", "") for r in careless)


def test_the_journey_lines_can_be_turned_off_without_losing_other_lines(
    write_config: Callable[..., Path],
    smtp_server: DevSMTPServer,
    start_workers: Callable[..., WorkerProcess],
    redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("MAILPIPE_LOG_JOURNEY", "off")
    path = write_config()
    worker = start_workers(path, processes=1, threads=4)
    report = Submitter(load_config(path)).submit(hello_leads("q", 5))
    assert set(wait_until_final(StatusStore(redis_client), report.accepted, timeout=60).values()) == {"sent"}
    worker.stop()
    lines = (tmp_path / "worker-0.log").read_text().splitlines()
    assert any('"Worker process is ready for action."' in line for line in lines)
    assert not any('"stage_done"' in line for line in lines)


def test_lines_written_before_a_sigkill_are_in_the_log_even_when_the_parent_could_not_relay_them(
    write_config: Callable[..., Path],
    smtp_server: DevSMTPServer,
    start_workers: Callable[..., WorkerProcess],
    redis_client: redis.Redis,
    tmp_path: Path,
) -> None:
    """Dramatiq's parent process relays its workers' output; a stopped parent stands for one that had
    not yet copied the last lines when the whole command was SIGKILLed."""
    path = write_config()
    worker = start_workers(path, processes=1, threads=4)
    log_path = tmp_path / "worker-0.log"
    assert "ready for action" in eventually(log_path.read_text, lambda text: "ready for action" in text, timeout=60)
    os.kill(worker.pid, signal.SIGSTOP)
    try:
        report = Submitter(load_config(path)).submit(hello_leads("k", 10))
        assert set(wait_until_final(StatusStore(redis_client), report.accepted, timeout=60).values()) == {"sent"}
    finally:
        worker.kill()
    journey = [json.loads(line) for line in log_path.read_text().splitlines() if '"stage_done"' in line]
    assert {r["event_id"] for r in journey if r["stage"] == "classify"} == set(report.accepted)
