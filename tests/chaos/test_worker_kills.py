"""2,000 events through 3 worker processes while a random one is SIGKILLed every few seconds."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest
import redis
from scenario import Figures, chaos_config, lead, stop_together
from testbed import SMTP_USERS, account_toml

from pipeline.config import load_config
from pipeline.runtime.processes import WorkerProcess
from pipeline.smtp.devsmtp import DevSMTPServer, TLSFiles
from pipeline.state.status import StatusStore
from pipeline.submit import Submitter

pytestmark = pytest.mark.chaos

EVENTS = 2000
WORKERS = 3
MAX_KILLS = 12
ROUTES = """
[[routes]]
match = { list = "one" }
accounts = ["alpha"]
[[routes]]
match = { list = "two" }
accounts = ["beta"]
[[routes]]
match = { list = "three" }
accounts = ["gamma"]
"""


def journey_lines(logs: bytes) -> list[dict[str, object]]:
    """The per-email `stage_done` lines of worker logs (JSON); anything else is skipped."""
    found = []
    for raw in logs.splitlines():
        if b'"stage_done"' in raw:
            try:
                line = json.loads(raw)
            except ValueError:
                continue  # a line cut short by a SIGKILL
            if isinstance(line, dict) and line.get("event") == "stage_done":
                found.append(line)
    return found


def worker(path: Path, log_dir: Path, n: int) -> WorkerProcess:
    env = {f"TEST_PW_{u.upper()}": p for u, p in SMTP_USERS.items()}
    return WorkerProcess(path, processes=1, threads=8, env=env, log_path=log_dir / f"worker-{n:02d}.log").start()


def test_sigkilling_random_workers_loses_nothing_and_sends_nothing_twice(
    tmp_path: Path,
    redis_url: str,
    redis_client: redis.Redis,
    smtp_server: DevSMTPServer,
    tls_files: TLSFiles,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for user, password in SMTP_USERS.items():
        monkeypatch.setenv(f"TEST_PW_{user.upper()}", password)
    port = smtp_server.ports["starttls"]
    accounts = "".join(account_toml(name, port, tls_files.ca_file, per_second=70) for name in SMTP_USERS)
    path = chaos_config(tmp_path / "mailpipe.toml", redis_url, accounts, routes=ROUTES)
    config = load_config(path)
    status = StatusStore(redis_client)
    figures = Figures("sigkill_workers", EVENTS)
    rng = random.Random(7)
    started = time.monotonic()

    workers = [worker(path, tmp_path, n) for n in range(WORKERS)]
    spawned = WORKERS
    try:
        report = Submitter(config).submit([lead(i, "kill") for i in range(EVENTS)])
        assert len(report.accepted) == EVENTS
        deadline = time.monotonic() + 300
        outcomes = status.outcomes(report.accepted)
        while time.monotonic() < deadline and any(v is None for v in outcomes.values()):
            if figures.kills < MAX_KILLS:
                time.sleep(rng.uniform(2.0, 4.0))
                victim = rng.randrange(WORKERS)
                workers[victim].kill()
                figures.kills += 1
                workers[victim] = worker(path, tmp_path, spawned)
                spawned += 1
                figures.restarts += 1
            else:
                time.sleep(0.5)
            outcomes = status.outcomes(report.accepted)
        recipients = [m.rcpt_to[0] for m in smtp_server.wait_for(EVENTS, timeout=5)]
    finally:
        stop_together(workers)
    figures.count(outcomes, recipients, redis_client, started).report()

    assert figures.kills >= 5, "the run ended before enough workers were killed to mean anything"
    assert figures.outcomes == {"sent": EVENTS}, figures
    assert figures.unique_received == EVENTS
    # a duplicate is only possible where a kill landed between the end of DATA and the ledger write
    assert figures.duplicates <= figures.ambiguous and figures.duplicates <= figures.kills, figures

    # The secret check below means something only if these logs are the ones the mail went through:
    # one per worker command started, and every email's classify line is in them (a batch's lines
    # are in the log file before its ack: workers append to it themselves rather than through
    # Dramatiq's parent, so a kill cannot lose one without a redelivery logging it).
    files = sorted(tmp_path.glob("worker-*.log"))
    assert len(files) == spawned
    logs = b"".join(f.read_bytes() for f in files)
    classified = {line.get("event_id") for line in journey_lines(logs) if line.get("stage") == "classify"}
    assert set(report.accepted) <= classified, f"{len(set(report.accepted) - classified)} emails have no classify line"
    for secret in SMTP_USERS.values():
        assert secret.encode() not in logs, "an SMTP password reached a worker log"
    for key in redis_client.scan_iter(match="mailpipe:*", count=5000):
        kind = redis_client.type(key)
        if kind == b"list":
            blob = b"".join(redis_client.lrange(key, 0, -1))
        elif kind == b"hash":
            blob = b"".join(k + v for k, v in redis_client.hgetall(key).items())
        elif kind == b"stream":
            blob = b"".join(b"".join(k + v for k, v in fields.items()) for _, fields in redis_client.xrange(key))
        else:
            continue
        for secret in SMTP_USERS.values():
            assert secret.encode() not in blob, f"an SMTP password reached Redis key {key!r}"
