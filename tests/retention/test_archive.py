"""The archiver: every transition reaches PostgreSQL once, even when consumers are killed mid-batch."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import redis
from sqlalchemy import Engine, text

from pipeline.archive.coldstore import DeliveryLogReader
from pipeline.archive.consumer import Archiver
from pipeline.inbox.index import MessageIndex
from pipeline.models import LeadEvent
from pipeline.state import keys
from pipeline.state.status import Retention, StatusStore, Transition


def _events(n: int, tenant: str = "acme", campaign: str = "spring") -> list[LeadEvent]:
    return [
        LeadEvent(event_id=f"ev-{i}", tenant=tenant, to=f"lead{i}@example.com", campaign=campaign, subject="s", text="t")
        for i in range(n)
    ]


def _drive(store: StatusStore, events: list[LeadEvent]) -> int:
    """accepted → deferred → sent or failed for each event; returns how many stream entries that made."""
    store.accept(events)
    store.record([Transition(e.tenant, e.event_id, "deferred", {"stage": "classify", "attempt": 1}) for e in events])
    store.record(
        [
            Transition(
                e.tenant,
                e.event_id,
                "failed" if i % 5 == 0 else "sent",
                {"stage": "classify", "attempt": 2, "account": "main", "code": 250, "message_id": f"<m{i}@acme.example>"},
            )
            for i, e in enumerate(events)
        ]
    )
    return 3 * len(events)


def _count(engine: Engine, sql: str) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text(sql)).scalar_one())


def test_a_batch_lands_as_one_row_per_event_and_one_per_transition(redis_client: redis.Redis, pg_engine: Engine) -> None:
    store = StatusStore(redis_client)
    entries = _drive(store, _events(50))
    archiver = Archiver(redis_client, pg_engine, consumer="t1", batch=40)
    while archiver.run_once(block_ms=50).entries:
        pass
    assert _count(pg_engine, "SELECT count(*) FROM delivery_events") == 50
    assert _count(pg_engine, "SELECT count(*) FROM delivery_history") == entries
    with pg_engine.connect() as connection:
        row = connection.execute(
            text(
                "SELECT outcome, state, campaign, recipient, attempts, account, message_id"
                " FROM delivery_events WHERE event_id='ev-0'"
            )
        ).one()
    assert tuple(row) == ("failed", "failed", "spring", "lead0@example.com", 2, "main", "<m0@acme.example>")


def test_archive_consumers_killed_mid_batch_lose_and_duplicate_nothing(
    redis_client: redis.Redis, pg_engine: Engine, pg_url: str, retention_config: Callable[..., Path]
) -> None:
    path = retention_config(hot=3600)
    store = StatusStore(redis_client)
    entries = _drive(store, _events(4000))
    env = {**os.environ, "MAILPIPE_CONFIG": str(path)}
    command = [sys.executable, "-m", "pipeline.cli", "archive", "--batch", "150", "--claim-idle", "0.3"]
    rng = random.Random(7)
    kills = 0
    for _ in range(6):
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(1.2, 2.5))  # start-up is about a second; then it is somewhere inside a batch
        process.send_signal(signal.SIGKILL)
        process.wait()
        kills += 1
    pending_before = sum(g["pending"] for g in redis_client.xinfo_groups(keys.events_stream("acme")))
    time.sleep(0.4)
    finished = subprocess.run([*command, "--once"], env=env, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    assert kills == 6 and pending_before >= 0
    assert _count(pg_engine, "SELECT count(*) FROM delivery_history") == entries
    assert _count(pg_engine, "SELECT count(DISTINCT stream_id) FROM delivery_history") == entries
    assert _count(pg_engine, "SELECT count(*) FROM delivery_events") == 4000
    assert _count(pg_engine, "SELECT count(*) FROM delivery_events WHERE outcome IS NULL OR event IS NULL") == 0
    assert sum(g["pending"] for g in redis_client.xinfo_groups(keys.events_stream("acme"))) == 0


def test_a_bounce_after_the_hot_window_lands_on_its_event_through_the_database(
    redis_client: redis.Redis, pg_engine: Engine
) -> None:
    cold = DeliveryLogReader(pg_engine)
    store = StatusStore(redis_client, retention=Retention(hot=1), cold=cold)
    index = MessageIndex(redis_client, ttl=1, cold=cold)
    events = _events(3)
    _drive(store, events)
    index.remember([("acme", f"<m{i}@acme.example>", e.event_id) for i, e in enumerate(events)])
    archiver = Archiver(redis_client, pg_engine, consumer="t1", hot=1)  # final rows written: hot keys may expire
    archiver.run_once(block_ms=50)
    time.sleep(2.1)
    assert not redis_client.exists(keys.event("acme", "ev-1"), keys.message_ref("acme", "<m1@acme.example>"))

    found = index.find(["<M1@acme.example>"], None)  # the bounce mail's In-Reply-To, after the Redis entry expired
    assert found is not None and (found.tenant, found.event_id) == ("acme", "ev-1")
    bounce = Transition("acme", "ev-1", "bounced", {"stage": "inbox", "reason": "user_unknown"}, update=True)
    assert store.record([bounce]) == [True]
    archiver.run_once(block_ms=50)
    status = store.get("acme", "ev-1")  # Redis has nothing: this is the database answering
    assert status is not None
    assert status.outcome == "sent" and status.state == "bounced"
    assert [h["state"] for h in status.history] == ["accepted", "deferred", "sent", "bounced"]
    assert store.record([Transition("acme", "never", "bounced", {}, update=True)]) == [False]
