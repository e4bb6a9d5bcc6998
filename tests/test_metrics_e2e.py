"""`/metrics` of real `mailpipe worker --metrics-port` processes after a run on real Redis and SMTP."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from eventually import eventually, wait_until_final
from metrics_scrape import free_port, has, parse, scrape_text, value
from prometheus_client.multiprocess import MultiProcessCollector

from pipeline.config import load_config
from pipeline.runtime.processes import WorkerProcess
from pipeline.smtp.devsmtp import DevSMTPServer
from pipeline.state.status import StatusStore
from pipeline.state.suppression import SuppressionStore
from pipeline.submit import Submitter


def lead(i: int, to: str | None = None, **extra: object) -> dict[str, object]:
    event: dict[str, object] = {
        "event_id": f"m-{i:03d}",
        "to": to or f"lead{i}@receiver.example",
        "template": "hello",
        "data": {"first_name": f"N{i}", "company": "Co"},
        **extra,
    }
    if i % 3 == 0:
        event["list"] = "nordics"
    elif i % 3 == 1:
        event["campaign"] = "outreach"
    return event


@pytest.fixture
def metrics_port(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> int:
    port = free_port()
    monkeypatch.setenv("MAILPIPE_METRICS_PORT", str(port))
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "prom"))
    # small prefetch: both worker processes take part even in a short run
    monkeypatch.setenv("dramatiq_queue_prefetch", "2")
    monkeypatch.setenv("dramatiq_delay_queue_prefetch", "2")
    return port


def leftover_from_an_earlier_run(directory: Path) -> None:
    """A real metrics file of another process, as a previous run would leave it."""
    directory.mkdir(exist_ok=True)
    code = "from pipeline.observe import metrics; metrics.STAGE_IN.labels('render').inc(1000)"
    subprocess.run([sys.executable, "-c", code], env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}, check=True)
    assert list(directory.glob("counter_*.db"))


def test_metrics_after_a_run_match_the_outcomes_per_stage_account_and_reply_class(
    write_config: Callable[..., Path],
    smtp_server: DevSMTPServer,
    start_workers: Callable[..., WorkerProcess],
    redis_client: redis.Redis,
    metrics_port: int,
    tmp_path: Path,
) -> None:
    flaky = ["451 4.3.0 Temporary local problem, try later"]
    slow = ["454 4.7.0 Throttling failure: Maximum sending rate exceeded."]

    def responder(address: str, server: DevSMTPServer) -> str | None:
        local = address.split("@")[0]
        if local == "nobody":
            return "550 5.1.1 <nobody@receiver.example>: Recipient address rejected: User unknown"
        if local == "flaky" and flaky:
            return flaky.pop()
        if local == "slow" and slow:
            return slow.pop()
        return None

    smtp_server.rcpt_responder = responder
    leftover_from_an_earlier_run(tmp_path / "prom")
    path = write_config()
    SuppressionStore(redis_client).add("default", "unsubscribed@receiver.example", "unsubscribed")
    started = time.time()
    worker = start_workers(path, processes=2, threads=4)
    events = [lead(i) for i in range(30)]
    events += [
        lead(30, "nobody@receiver.example"),  # nordics → alpha, hard bounce
        lead(31, "flaky@receiver.example"),  # outreach → beta, deferred then sent
        lead(32, "unsubscribed@receiver.example"),  # default → suppressed at route
        {"event_id": "m-033", "to": "novar@receiver.example", "template": "hello", "data": {}},  # rejected at render
        lead(34, "slow@receiver.example"),  # outreach → beta, throttled once then sent
    ]
    report = Submitter(load_config(path)).submit(events)
    assert len(report.accepted) == 35
    outcomes = wait_until_final(StatusStore(redis_client), report.accepted, timeout=90)
    assert Counter(outcomes.values()) == {"sent": 32, "bounced": 1, "suppressed": 1, "rejected": 1}
    received = smtp_server.snapshot()
    by_account = Counter(r.auth_user for r in received)

    def scraped() -> dict:
        return parse(scrape_text(metrics_port))

    samples = eventually(scraped, lambda s: value(s, "mailpipe_stage_messages_out_total", stage="classify") >= 35, timeout=30)

    # final outcomes, read from Redis by the exporter
    for outcome, count in {"accepted": 35, "sent": 32, "bounced": 1, "suppressed": 1, "rejected": 1, "failed": 0}.items():
        assert value(samples, "mailpipe_events_total", outcome=outcome) == count, outcome
    # SMTP transactions: 32 accepted + 1 temporary failure + 1 throttle + 1 hard bounce
    assert value(samples, "mailpipe_smtp_replies_total", reply_class="2xx") == len(received) == 32
    assert value(samples, "mailpipe_smtp_replies_total", reply_class="4xx") == 2
    assert value(samples, "mailpipe_smtp_replies_total", reply_class="5xx") == 1
    assert value(samples, "mailpipe_smtp_replies_total", reply_class="transport") == 0
    assert value(samples, "mailpipe_send_attempts_total") == 35
    assert value(samples, "mailpipe_send_failures_total") == 3
    for account in ("alpha", "beta", "gamma"):
        extra = {"alpha": 1, "beta": 2, "gamma": 0}[account]  # alpha's bounce; beta's deferral and throttle
        assert value(samples, "mailpipe_send_attempts_total", account=account, provider="smtp") == by_account[account] + extra
    assert value(samples, "mailpipe_send_results_total", result="sent") == 32
    assert value(samples, "mailpipe_send_results_total", account="beta", result="throttled") == 1
    assert value(samples, "mailpipe_account_signals_total", account="beta", signal="throttled") == 1
    assert value(samples, "mailpipe_throttles_total", account="beta") == value(samples, "mailpipe_throttles_total") == 1
    assert value(samples, "mailpipe_account_effective_rate_per_second", account="beta") < 500
    assert value(samples, "mailpipe_send_results_total", account="beta", result="deferred", reason_class="transient") == 1
    assert value(samples, "mailpipe_bounces_total", account="alpha", reason="user_unknown", kind="hard") == 1
    assert value(samples, "mailpipe_delivery_latency_seconds_count", outcome="sent") == 32
    # stages: every accepted email rendered, none failed, nothing in progress; 35 SMTP transactions classified
    assert value(samples, "mailpipe_stage_messages_in_total", stage="render") == 35  # the leftover 1000 was wiped
    assert value(samples, "mailpipe_stage_messages_in_total", stage="classify") == 35
    # the send-time gate may hand a message back to the send queue (too early for its slot): >= 35 in,
    # but exactly 35 SMTP transactions
    assert value(samples, "mailpipe_stage_messages_in_total", stage="send") >= 35
    assert value(samples, "mailpipe_send_attempts_total") == 35
    for stage in ("render", "route", "rate_limit", "send", "classify"):
        assert value(samples, "mailpipe_stage_failures_total", stage=stage) == 0
        assert value(samples, "mailpipe_stage_messages_in_progress", stage=stage) == 0
        took_in = value(samples, "mailpipe_stage_messages_in_total", stage=stage)
        assert value(samples, "mailpipe_stage_messages_out_total", stage=stage) == took_in
        assert value(samples, "mailpipe_stage_last_success_timestamp_seconds", stage=stage) >= started
        assert value(samples, "mailpipe_stage_batch_duration_seconds_count", stage=stage) > 0
    # label sets known from the config exist at zero before anything happened to them
    assert has(samples, "mailpipe_throttles_total", account="gamma")
    assert value(samples, "mailpipe_throttles_total", account="gamma") == 0
    assert has(samples, "mailpipe_account_signals_total", account="alpha", signal="auth_failed")
    # state read at scrape time
    assert value(samples, "mailpipe_state_up") == 1
    for account in ("alpha", "beta", "gamma"):
        assert value(samples, "mailpipe_account_health", account=account, state="up") == 1
        assert value(samples, "mailpipe_account_configured_rate_per_second", account=account) == 500
    assert value(samples, "mailpipe_account_daily_sent_messages") == 32
    assert value(samples, "mailpipe_suppressed_addresses") == 2  # the unsubscribed one and the hard bounce
    assert value(samples, "mailpipe_queue_messages", state="ready") == 0
    assert value(samples, "mailpipe_events_pending") == 0
    assert value(samples, "mailpipe_workers_alive") >= 2
    # no address or event id ever becomes a label value
    for _, labels in samples:
        for _, label_value in labels:
            assert "@" not in label_value and not label_value.startswith("m-")
    assert worker.process is not None and worker.process.poll() is None


def test_two_worker_processes_are_both_counted_in_one_scrape(
    write_config: Callable[..., Path],
    smtp_server: DevSMTPServer,
    start_workers: Callable[..., WorkerProcess],
    redis_client: redis.Redis,
    metrics_port: int,
    tmp_path: Path,
) -> None:
    path = write_config()
    worker = start_workers(path, processes=2, threads=2)
    report = Submitter(load_config(path)).submit([lead(i) for i in range(60)])
    outcomes = wait_until_final(StatusStore(redis_client), report.accepted, timeout=90)
    assert Counter(outcomes.values()) == {"sent": 60}
    samples = eventually(
        lambda: parse(scrape_text(metrics_port)),
        lambda s: value(s, "mailpipe_stage_messages_out_total", stage="classify") >= 60,
        timeout=30,
    )

    per_process: dict[int, float] = {}
    for file in (tmp_path / "prom").glob("counter_*.db"):
        pid = int(file.stem.split("_")[1])
        for metric in MultiProcessCollector.merge([str(file)], accumulate=True):
            for sample in metric.samples:
                if sample.name == "mailpipe_smtp_replies_total" and sample.labels.get("reply_class") == "2xx":
                    per_process[pid] = per_process.get(pid, 0) + sample.value
    senders = {pid: n for pid, n in per_process.items() if n > 0}
    assert len(senders) == 2, per_process
    assert set(senders) <= set(worker.children())
    assert sum(senders.values()) == value(samples, "mailpipe_smtp_replies_total", reply_class="2xx") == 60
