"""Metric definitions, the Redis state collector, pre-created label sets and multiprocess files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import dramatiq
import pytest
import redis
from metrics_scrape import has, parse, value
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.multiprocess import MultiProcessCollector

from pipeline.config import Config, load_config
from pipeline.limits.account_state import AccountState, Health
from pipeline.models import STAGES, LeadEvent, SendReply, TransportError
from pipeline.observe import exposition, metrics
from pipeline.observe.server import prepare_worker_metrics, reap_dead_processes
from pipeline.observe.state_collector import StateCollector
from pipeline.runtime.broker import make_broker
from pipeline.runtime.enqueue import Enqueuer
from pipeline.state import keys
from pipeline.state.status import StatusStore, Transition
from pipeline.state.suppression import SuppressionStore

FORBIDDEN_LABELS = {"email", "address", "to", "recipient", "event_id", "message_id", "id", "tenant", "reply", "text"}


def collected(config: Config) -> dict:
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    registry.register(StateCollector(config))
    return parse(generate_latest(registry).decode())


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (SendReply(account="a", code=250), "2xx"),
        (SendReply(account="a", code=451), "4xx"),
        (SendReply(account="a", code=550, enhanced="5.1.1"), "5xx"),
        (SendReply(account="a", code=535, error=TransportError.AUTH), "5xx"),
        (SendReply(account="a", error=TransportError.TIMEOUT), "transport"),
        (SendReply(account="a", code=-1, error=TransportError.PROTOCOL), "transport"),
    ],
)
def test_smtp_replies_fall_into_four_classes(reply: SendReply, expected: str) -> None:
    assert metrics.reply_class(reply) == expected


def test_reason_labels_stay_a_closed_set() -> None:
    assert metrics.reason_label("user_unknown") == "user_unknown"
    assert metrics.reason_label("lead@x.example is gone") == "other"
    assert metrics.reason_class("bad_reputation") == "reputation"
    assert metrics.reason_class(None) == "none"
    assert metrics.reason_class("made_up") == "other"


def test_every_metric_follows_the_naming_rules_and_has_only_low_cardinality_labels() -> None:
    instruments = [m for m in vars(metrics).values() if isinstance(m, MetricWrapperBase)]
    assert len(instruments) == 20
    for metric in instruments:
        assert metric._name.startswith("mailpipe_"), metric._name
        assert not set(metric._labelnames) & FORBIDDEN_LABELS, metric._name
        if metric._type == "histogram":
            assert metric._name.endswith("_seconds"), metric._name
    names = exposition.defined_metric_names()
    assert all(n.startswith("mailpipe_") for n in names)
    counters = {n for n in names if n.endswith("_total")}
    for attempts in (n for n in counters if n.endswith("_attempts_total")):
        assert attempts.replace("_attempts_total", "_failures_total") in counters
    assert "mailpipe_stage_failures_total" in counters


IMPORT_EVERYTHING = """
import importlib, json, pkgutil
import prometheus_client
import pipeline
skipped = []
for module in pkgutil.walk_packages(pipeline.__path__, "pipeline."):
    if module.name.endswith("__main__") or module.name in ("pipeline.runtime.worker", "pipeline.db.migrations.env"):
        continue  # a worker's entry point reads a config; alembic's env runs migrations
    importlib.import_module(module.name)
from pipeline.observe import metrics
print(json.dumps({
    "global": [n for n in prometheus_client.REGISTRY._names_to_collectors if n.startswith("mailpipe")],
    "ours": sorted(n for n in metrics.REGISTRY._names_to_collectors if n.startswith("mailpipe")),
}))
"""


def test_no_mailpipe_metric_registers_in_prometheus_global_registry_whatever_is_imported() -> None:
    """Every instrument of every module lives in mailpipe's registry: a host process's stays its own."""
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERYTHING], capture_output=True, text=True, timeout=300, check=False,
        cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["global"] == []
    assert {"mailpipe_stage_messages_in", "mailpipe_plugin_hook_errors", "mailpipe_webhook_requests"} <= set(found["ours"])


def test_known_label_sets_are_exposed_at_zero_before_anything_happens(config: Config) -> None:
    samples = parse(exposition.render_metrics(config).decode())
    for account in ("alpha", "beta", "gamma"):
        for reply_class in metrics.REPLY_CLASSES:
            assert has(samples, "mailpipe_smtp_replies_total", account=account, provider="smtp", reply_class=reply_class)
        assert has(samples, "mailpipe_throttles_total", account=account)
        assert has(samples, "mailpipe_send_failures_total", account=account, provider="smtp")
    for stage in STAGES:
        assert has(samples, "mailpipe_stage_messages_in_total", stage=stage)
        assert has(samples, "mailpipe_stage_messages_in_progress", stage=stage)
    assert has(samples, "mailpipe_complaints_total", provider="smtp", reason="feedback")
    assert value(samples, "mailpipe_state_up") == 1


def test_the_collector_reads_queue_depth_and_oldest_age_from_the_dramatiq_redis_layout(
    config: Config, redis_client: redis.Redis
) -> None:
    broker = make_broker(config.broker)
    Enqueuer(broker)
    for age in (120, 3):
        message = dramatiq.Message(
            queue_name="mailpipe.route", actor_name="mailpipe_route", args=({"v": 1, "items": []},), kwargs={}, options={}
        )
        broker.enqueue(message.copy(message_timestamp=int((time.time() - age) * 1000)))
    delayed = dramatiq.Message(
        queue_name="mailpipe.send", actor_name="mailpipe_send", args=({"v": 1, "items": []},), kwargs={}, options={}
    )
    broker.enqueue(delayed, delay=60_000)
    samples = collected(config)
    assert value(samples, "mailpipe_queue_messages", queue="mailpipe.route", state="ready") == 2
    assert value(samples, "mailpipe_queue_messages", queue="mailpipe.send", state="delayed") == 1
    assert value(samples, "mailpipe_queue_messages", queue="mailpipe.send", state="ready") == 0
    assert 119 <= value(samples, "mailpipe_queue_oldest_message_age_seconds", queue="mailpipe.route") <= 130
    assert value(samples, "mailpipe_queue_oldest_message_age_seconds", queue="mailpipe.send") == 0
    assert value(samples, "mailpipe_workers_alive") == 1  # the broker above has just spoken to Redis


def test_the_collector_reads_account_health_rates_outcomes_and_suppression(config: Config, redis_client: redis.Redis) -> None:
    AccountState(redis_client).pause("beta", "auth failed", Health.AUTH_FAILED)
    redis_client.hset(keys.account_state("default", "gamma"), mapping={"rate_factor": "0.5", "last_throttle": time.time()})
    store = StatusStore(redis_client)
    store.accept([LeadEvent(event_id=f"c{i}", to=f"a{i}@x.example", template="hello") for i in range(3)])
    store.record([Transition("default", "c0", "sent"), Transition("default", "c1", "bounced")])
    SuppressionStore(redis_client).add("default", "a1@x.example", "user_unknown")
    samples = collected(config)
    assert value(samples, "mailpipe_account_health", account="beta", state="auth_failed") == 1
    assert value(samples, "mailpipe_account_health", account="beta", state="up") == 0
    assert value(samples, "mailpipe_account_health", account="alpha", state="up") == 1
    assert value(samples, "mailpipe_account_configured_rate_per_second", account="gamma") == 500
    assert value(samples, "mailpipe_account_effective_rate_per_second", account="gamma") == 250
    assert value(samples, "mailpipe_events_total", outcome="accepted") == 3
    assert value(samples, "mailpipe_events_total", outcome="sent") == 1
    assert value(samples, "mailpipe_events_total", outcome="failed") == 0
    assert value(samples, "mailpipe_events_pending") == 1
    assert value(samples, "mailpipe_suppressed_addresses") == 1


def test_an_unreachable_redis_gives_state_up_zero_not_a_failed_scrape(write_config: Callable[..., Path], redis_url: str) -> None:
    path = write_config()
    path.write_text(path.read_text().replace(f'url = "{redis_url}"', 'url = "redis://127.0.0.1:1/0"'))
    samples = collected(load_config(path))
    assert value(samples, "mailpipe_state_up") == 0
    assert not has(samples, "mailpipe_queue_messages")


def run_in_multiprocess_mode(directory: Path, code: str) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    subprocess.run([sys.executable, "-c", f"from pipeline.observe import metrics\n{code}"], env=env, check=True, timeout=60)


def test_a_dead_workers_in_progress_count_is_dropped_but_its_counters_kept(tmp_path: Path) -> None:
    run_in_multiprocess_mode(
        tmp_path, "metrics.STAGE_IN_PROGRESS.labels('send').inc(7)\nmetrics.STAGE_IN.labels('send').inc(7)"
    )  # the process exits with 7 emails "in progress": a killed worker

    def current(name: str) -> float:
        return sum(
            s.value
            for m in MultiProcessCollector.merge([str(p) for p in tmp_path.glob("*.db")], accumulate=True)
            for s in m.samples
            if s.name == name
        )

    assert current("mailpipe_stage_messages_in_progress") == 7
    reap_dead_processes(str(tmp_path))
    assert current("mailpipe_stage_messages_in_progress") == 0
    assert current("mailpipe_stage_messages_in_total") == 7


def test_starting_a_worker_wipes_only_last_runs_metric_files(tmp_path: Path) -> None:
    directory = tmp_path / "prom"
    directory.mkdir()
    run_in_multiprocess_mode(directory, "metrics.STAGE_IN.labels('render').inc(1000)")
    (directory / "notes.txt").write_text("keep me")
    env = {"PROMETHEUS_MULTIPROC_DIR": str(directory)}
    args = prepare_worker_metrics(env, 9999)
    assert args == ["--fork-function", "pipeline.observe.server:serve"]
    assert not list(directory.glob("*.db")) and (directory / "notes.txt").exists()
    assert env["MAILPIPE_METRICS_PORT"] == "9999"


def test_without_a_directory_each_port_gets_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    env: dict[str, str] = {}
    prepare_worker_metrics(env, 9471)
    assert env["PROMETHEUS_MULTIPROC_DIR"].endswith(f"mailpipe-metrics-{os.getuid()}-9471")
    assert Path(env["PROMETHEUS_MULTIPROC_DIR"]).is_dir()
