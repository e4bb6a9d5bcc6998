"""The RabbitMQ broker option end to end, on a private node: a killed worker's messages come back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from localrabbit import EPMD, SERVER, LocalRabbitMQ
from scenario import Figures, chaos_config, lead
from testbed import SMTP_USERS, account_toml

from pipeline.config import load_config
from pipeline.runtime.processes import WorkerProcess
from pipeline.smtp.devsmtp import DevSMTPServer, TLSFiles
from pipeline.state.status import StatusStore
from pipeline.submit import Submitter

pytestmark = pytest.mark.chaos

EVENTS = 300


@pytest.fixture
def rabbitmq(tmp_path: Path) -> Iterator[LocalRabbitMQ]:
    """A private RabbitMQ node on free ports (never the machine's 5672); skipped only when not installed."""
    pytest.importorskip("pika")
    if SERVER is None or EPMD is None:
        pytest.skip("rabbitmq-server is not installed (ops/bootstrap.sh installs it)")
    node = LocalRabbitMQ(tmp_path / "rabbitmq")
    try:
        node.start()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield node
    node.stop()


def test_events_flow_through_rabbitmq_and_a_killed_workers_messages_are_redelivered(
    tmp_path: Path,
    rabbitmq: LocalRabbitMQ,
    redis_url: str,
    redis_client: redis.Redis,
    smtp_server: DevSMTPServer,
    tls_files: TLSFiles,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for user, password in SMTP_USERS.items():
        monkeypatch.setenv(f"TEST_PW_{user.upper()}", password)
    accounts = account_toml("alpha", smtp_server.ports["starttls"], tls_files.ca_file, per_second=60)
    path = chaos_config(
        tmp_path / "mailpipe.toml",
        rabbitmq.url,
        accounts,
        extra=f'\n[redis]\nurl = "{redis_url}"\n',
    )
    config = load_config(path)
    assert config.broker.kind == "rabbitmq"
    figures = Figures("rabbitmq", EVENTS)
    started = time.monotonic()
    env = {f"TEST_PW_{u.upper()}": p for u, p in SMTP_USERS.items()}
    workers = [WorkerProcess(path, processes=1, threads=8, env=env, log_path=tmp_path / "worker-0.log").start()]
    status = StatusStore(redis_client)
    try:
        report = Submitter(config).submit([{**lead(i, "amqp"), "list": None} for i in range(EVENTS)])
        assert len(report.accepted) == EVENTS
        while len(smtp_server.snapshot()) < EVENTS // 4 and time.monotonic() - started < 60:
            time.sleep(0.1)
        workers[0].kill()
        figures.kills = 1
        workers.append(WorkerProcess(path, processes=1, threads=8, env=env, log_path=tmp_path / "worker-1.log").start())
        figures.restarts = 1
        deadline = time.monotonic() + 120
        outcomes = status.outcomes(report.accepted)
        while time.monotonic() < deadline and any(v is None for v in outcomes.values()):
            time.sleep(0.3)
            outcomes = status.outcomes(report.accepted)
        through_this_node = rabbitmq.has_queue("mailpipe.send")
    finally:
        for worker in workers:
            worker.stop()
    recipients = [m.rcpt_to[0] for m in smtp_server.snapshot()]
    figures.count(outcomes, recipients, redis_client, started).report()

    assert through_this_node  # the run really went through the private node
    assert figures.outcomes == {"sent": EVENTS}, figures
    assert figures.unique_received == EVENTS and figures.duplicates <= figures.ambiguous
