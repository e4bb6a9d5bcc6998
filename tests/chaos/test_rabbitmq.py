"""The RabbitMQ broker option end to end, in a private vhost: a killed worker's messages come back."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from scenario import Figures, chaos_config, lead
from testbed import SMTP_USERS, account_toml

from pipeline.config import load_config
from pipeline.runtime.processes import WorkerProcess
from pipeline.smtp.devsmtp import DevSMTPServer, TLSFiles
from pipeline.state.status import StatusStore
from pipeline.submit import Submitter

pytestmark = pytest.mark.chaos

AMQP = ("127.0.0.1", 5672)
EVENTS = 300


def rabbitmqctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def amqp_vhost() -> Iterator[str]:
    """A vhost of our own (deleted afterwards, queues and all); skips where RabbitMQ does not run."""
    pytest.importorskip("pika")
    try:
        socket.create_connection(AMQP, timeout=1).close()
    except OSError:
        pytest.skip("RabbitMQ is not listening on 127.0.0.1:5672")
    if shutil.which("rabbitmqctl") is None:
        pytest.skip("rabbitmqctl is not available to create a private vhost")
    vhost = f"mailpipe-test-{uuid.uuid4().hex[:12]}"
    if rabbitmqctl("add_vhost", vhost).returncode != 0:
        pytest.skip("rabbitmqctl cannot add a vhost here (not allowed?)")
    try:
        assert rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*").returncode == 0
        yield vhost
    finally:
        rabbitmqctl("delete_vhost", vhost)


def test_events_flow_through_rabbitmq_and_a_killed_workers_messages_are_redelivered(
    tmp_path: Path,
    amqp_vhost: str,
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
        f"amqp://guest:guest@{AMQP[0]}:{AMQP[1]}/{amqp_vhost}",
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
        queues = rabbitmqctl("list_queues", "-p", amqp_vhost, "name").stdout
    finally:
        for worker in workers:
            worker.stop()
    recipients = [m.rcpt_to[0] for m in smtp_server.snapshot()]
    figures.count(outcomes, recipients, redis_client, started).report()

    assert "mailpipe.send" in queues  # the run really went through this vhost
    assert figures.outcomes == {"sent": EVENTS}, figures
    assert figures.unique_received == EVENTS and figures.duplicates <= figures.ambiguous
