"""What a chaos scenario needs: a config for real worker processes, leads, and the run's figures."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import redis

from pipeline.runtime.processes import WorkerProcess
from pipeline.runtime.sweeper import redriven_count
from pipeline.state import keys

REPORT_ENV = "MAILPIPE_CHAOS_REPORT"  # a file to append each scenario's figures to (JSON lines)


def stop_together(workers: list[WorkerProcess], timeout: float = 20.0) -> None:
    """Shut the worker commands down gracefully all at once (one SIGTERM each, then wait), not one after the other."""
    live = [w for w in workers if w.process is not None and w.process.poll() is None]
    for w in live:
        assert w.process is not None
        w.process.send_signal(signal.SIGTERM)  # once: a second SIGTERM makes Dramatiq kill its workers
    deadline = time.monotonic() + timeout
    for w in live:
        assert w.process is not None
        try:
            w.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            w.kill()
    for w in workers:
        w.stop()  # each has exited: closes its log and reaps any leftover of its group


def chaos_config(path: Path, redis_url: str, accounts: str, *, routes: str = "", default: str = "alpha", extra: str = "") -> Path:
    """Fast redelivery (5 s heartbeat, frequent maintenance), a 1 s sweeper, short back-off."""
    templates = path.parent / "templates"
    templates.mkdir(exist_ok=True)
    (templates / "hello.subject").write_text("Hello {{ first_name }}")
    (templates / "hello.html").write_text("<p>Hi {{ first_name }}, welcome to {{ company }}.</p>")
    path.write_text(f"""
[broker]
url = "{redis_url}"
heartbeat_timeout_ms = 5000
maintenance_chance = 20000
prefetch = 16

[retry]
base_delay = 0.5
max_delay = 4
max_attempts = 6

[sweeper]
interval = 1
stalled_after = 20

[templates]
dir = "templates"
{extra}
{accounts}
{routes}
[default]
account = "{default}"
""")
    return path


def lead(i: int, prefix: str = "c") -> dict[str, object]:
    return {
        "event_id": f"{prefix}-{i:05d}",
        "to": f"lead{i}@receiver.example",
        "list": ("one", "two", "three")[i % 3],
        "template": "hello",
        "data": {"first_name": f"Name{i}", "company": f"Co{i}"},
    }


def ambiguous_total(client: redis.Redis, tenant: str = "default") -> int:
    total = 0
    for key in client.scan_iter(match=keys.ledger(tenant, "*"), count=1000):
        total += int(client.hget(key, "ambiguous") or 0)
    return total


@dataclass
class Figures:
    scenario: str
    events: int
    kills: int = 0
    restarts: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    received: int = 0
    unique_received: int = 0
    duplicates: int = 0
    ambiguous: int = 0
    redriven: int = 0
    seconds: float = 0.0
    extra: dict[str, object] = field(default_factory=dict)

    def count(self, outcomes: dict[str, str | None], recipients: list[str], client: redis.Redis, started: float) -> Figures:
        self.outcomes = dict(Counter(v or "pending" for v in outcomes.values()))
        self.received = len(recipients)
        self.unique_received = len(set(recipients))
        self.duplicates = self.received - self.unique_received
        self.ambiguous = ambiguous_total(client)
        self.redriven = redriven_count(client)
        self.seconds = round(time.monotonic() - started, 1)
        return self

    def report(self) -> None:
        line = json.dumps(asdict(self))
        print(f"\nCHAOS {line}")
        target = os.environ.get(REPORT_ENV)
        if target:
            with open(target, "a", encoding="utf-8") as out:
                out.write(line + "\n")
