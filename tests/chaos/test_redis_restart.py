"""Redis (AOF on) stopped and restarted on the same port mid-run: workers survive, nothing lost or doubled."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis
from scenario import Figures, chaos_config, lead, stop_together
from testbed import SMTP_USERS, account_toml

from pipeline.config import load_config
from pipeline.runtime.processes import WorkerProcess
from pipeline.smtp.devsmtp import DevSMTPServer, TLSFiles
from pipeline.state.localredis import LocalRedis
from pipeline.state.status import StatusStore
from pipeline.submit import Submitter

pytestmark = pytest.mark.chaos

EVENTS = 2000
DOWN_SECONDS = 6.0


def test_a_redis_restart_mid_run_loses_nothing_and_sends_nothing_twice(
    tmp_path: Path, aof_redis: LocalRedis, smtp_server: DevSMTPServer, tls_files: TLSFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    for user, password in SMTP_USERS.items():
        monkeypatch.setenv(f"TEST_PW_{user.upper()}", password)
    port = smtp_server.ports["starttls"]
    accounts = "".join(account_toml(name, port, tls_files.ca_file, per_second=70) for name in SMTP_USERS)
    routes = "".join(
        f'\n[[routes]]\nmatch = {{ list = "{lst}" }}\naccounts = ["{acc}"]\n'
        for lst, acc in (("one", "alpha"), ("two", "beta"), ("three", "gamma"))
    )
    path = chaos_config(tmp_path / "mailpipe.toml", aof_redis.url, accounts, routes=routes)
    client = redis.Redis.from_url(aof_redis.url)
    assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
    status = StatusStore(client)
    figures = Figures("redis_restart", EVENTS)
    started = time.monotonic()
    env = {f"TEST_PW_{u.upper()}": p for u, p in SMTP_USERS.items()}
    workers = [
        WorkerProcess(path, processes=1, threads=8, env=env, log_path=tmp_path / f"worker-{n}.log").start() for n in range(3)
    ]
    restarted: list[LocalRedis] = []
    try:
        report = Submitter(load_config(path)).submit([lead(i, "restart") for i in range(EVENTS)])
        assert len(report.accepted) == EVENTS
        under_way = time.monotonic() + 120
        while len(smtp_server.snapshot()) < EVENTS // 4 and time.monotonic() < under_way:  # every stage busy
            time.sleep(0.1)
        assert len(smtp_server.snapshot()) >= EVENTS // 4, "the workers never got a quarter of the mail out"
        aof_redis.stop()
        figures.extra["received_when_stopped"] = len(smtp_server.snapshot())
        time.sleep(DOWN_SECONDS)
        restarted.append(LocalRedis(aof_redis.directory, appendonly=True, port=aof_redis.port).start())
        figures.restarts = 1
        figures.extra["down_seconds"] = DOWN_SECONDS
        figures.extra["workers_alive_after_restart"] = sum(w.process is not None and w.process.poll() is None for w in workers)

        deadline = time.monotonic() + 90
        outcomes = status.outcomes(report.accepted)
        while time.monotonic() < deadline and any(v is None for v in outcomes.values()):
            time.sleep(0.5)
            outcomes = status.outcomes(report.accepted)
        recipients = [m.rcpt_to[0] for m in smtp_server.wait_for(EVENTS, timeout=5)]
        figures.extra["workers_alive_at_end"] = sum(w.process is not None and w.process.poll() is None for w in workers)
        figures.count(outcomes, recipients, client, started).report()
    finally:
        stop_together(workers)
        for server in restarted:
            server.stop()

    assert figures.extra["workers_alive_after_restart"] == 3 and figures.extra["workers_alive_at_end"] == 3
    assert figures.outcomes == {"sent": EVENTS}, figures
    assert figures.unique_received == EVENTS
    assert figures.duplicates <= figures.ambiguous, figures
