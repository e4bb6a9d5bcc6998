"""With a database, the delivery log deduplicates beyond the hot window: no marker in Redis, and Redis
lets a final event go only once the archiver has committed its final row."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from pipeline.archive.coldstore import DeliveryLogReader
from pipeline.archive.consumer import Archiver
from pipeline.client import Client
from pipeline.config import load_config
from pipeline.http.app import create_app
from pipeline.models import LeadEvent
from pipeline.observe.snapshot import archive_backlog
from pipeline.state import keys
from pipeline.state.status import DedupeInDatabase, Retention, StatusStore, Transition
from pipeline.submit import Submitter

TOKEN = "ingest-token-for-dedupe-tests-0123456789"


def _event(event_id: str, tenant: str = "acme") -> LeadEvent:
    return LeadEvent(event_id=event_id, tenant=tenant, to=f"{event_id}@example.com", subject="s", text="t")


def _store(client: redis.Redis, engine: Engine, *, hot: float = 1, window: float = 600) -> StatusStore:
    return StatusStore(client, retention=Retention(hot=hot, dedupe_window=window), cold=DeliveryLogReader(engine))


def _finish(store: StatusStore, ids: list[str], tenant: str = "acme") -> None:
    assert store.accept([_event(e, tenant) for e in ids]) == [True] * len(ids)
    store.record([Transition(tenant, e, "sent", {"stage": "classify"}) for e in ids])


def _archive(client: redis.Redis, engine: Engine, hot: float = 1) -> None:
    archiver = Archiver(client, engine, consumer="test", hot=hot)
    while archiver.run_once(block_ms=50).entries:
        pass


def _hot_keys(client: redis.Redis, tenant: str, event_id: str) -> int:
    return int(client.exists(keys.event(tenant, event_id), keys.history(tenant, event_id)))


def _gone(client: redis.Redis, tenant: str, ids: list[str], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while any(_hot_keys(client, tenant, e) for e in ids):
        assert time.monotonic() < deadline, "hot keys still there"
        time.sleep(0.1)


def test_resubmitted_inside_and_after_the_hot_window_is_never_accepted_twice_and_redis_keeps_no_marker(
    redis_client: redis.Redis, pg_engine: Engine
) -> None:
    store = _store(redis_client, pg_engine)
    _finish(store, ["a", "b"])
    assert store.accept([_event("a"), _event("c")]) == [False, True]  # inside the hot window: the hash answers
    _archive(redis_client, pg_engine)
    _gone(redis_client, "acme", ["a", "b"])
    assert store.accept([_event("a"), _event("b"), _event("d")]) == [False, False, True]  # the delivery log answers
    assert redis_client.keys(keys.dedupe_buckets("acme") + "*") == []
    assert redis_client.keys("mailpipe:acme:seen:*") == []
    # the same event_id of another tenant is another event
    assert store.accept([_event("a", tenant="other")]) == [True]


def test_after_the_dedupe_window_an_event_id_is_accepted_again(redis_client: redis.Redis, pg_engine: Engine) -> None:
    store = _store(redis_client, pg_engine, hot=1, window=2)
    _finish(store, ["late"])
    _archive(redis_client, pg_engine)
    _gone(redis_client, "acme", ["late"])
    assert store.accept([_event("late")]) == [False]
    time.sleep(2.2)  # the row is older than the window now
    assert store.accept([_event("late")]) == [True]


def test_after_flushall_archived_events_are_still_duplicates_and_lost_in_flight_ones_can_be_resubmitted(
    redis_client: redis.Redis, pg_engine: Engine
) -> None:
    store = _store(redis_client, pg_engine, hot=3600)
    _finish(store, ["done"])
    assert store.accept([_event("flying")]) == [True]
    _archive(redis_client, pg_engine, hot=3600)
    with pg_engine.connect() as connection:
        rows = dict(connection.execute(text("SELECT event_id, outcome FROM delivery_events")).all())
    assert rows == {"done": "sent", "flying": None}
    redis_client.flushall()
    assert store.accept([_event("done"), _event("flying")]) == [False, True]


def test_a_stopped_archiver_keeps_final_events_hot_until_it_has_written_them(
    redis_client: redis.Redis, pg_engine: Engine
) -> None:
    store = _store(redis_client, pg_engine, hot=1, window=600)
    _finish(store, ["waiting"])
    assert redis_client.ttl(keys.event("acme", "waiting")) > 500  # the backstop, not `hot`
    time.sleep(1.5)  # well past `hot`: nothing archived, so nothing expires
    assert _hot_keys(redis_client, "acme", "waiting") == 2
    assert store.accept([_event("waiting")]) == [False]
    Archiver(redis_client, pg_engine, consumer="test").streams()  # the group exists, nothing read yet
    assert archive_backlog(redis_client) == 2  # accepted, sent: what the MailpipeArchiveBehind alert watches
    _archive(redis_client, pg_engine)  # final row committed: `hot` is over already, the keys go
    assert 0 < redis_client.ttl(keys.event("acme", "waiting")) <= 1
    assert archive_backlog(redis_client) == 0
    _gone(redis_client, "acme", ["waiting"])
    assert store.accept([_event("waiting")]) == [False]


def test_an_archiver_replaying_a_batch_never_lengthens_a_ttl(redis_client: redis.Redis, pg_engine: Engine) -> None:
    store = _store(redis_client, pg_engine, hot=30)
    _finish(store, ["once"])
    _archive(redis_client, pg_engine, hot=30)
    assert 0 < redis_client.ttl(keys.event("acme", "once")) <= 30
    pipe = redis_client.pipeline()
    Archiver(redis_client, pg_engine, consumer="late", hot=3600)._expire_hot(pipe, [("acme", "once", time.time())])
    pipe.execute()
    assert 0 < redis_client.ttl(keys.event("acme", "once")) <= 30


def test_a_submitter_without_the_database_refuses_a_deployment_that_deduplicates_there(
    redis_client: redis.Redis, pg_engine: Engine
) -> None:
    _finish(_store(redis_client, pg_engine), ["x"])
    with pytest.raises(DedupeInDatabase):
        StatusStore(redis_client).accept([_event("y")])
    assert not redis_client.exists(keys.event("acme", "y"))


def test_every_submit_path_with_a_database_asks_the_delivery_log(
    redis_client: redis.Redis,
    pg_engine: Engine,
    retention_config: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TEST_DEDUPE_INGEST_TOKEN", TOKEN)
    path = retention_config(hot=1, dedupe_window=600, extra='\n[serve]\ningest_tokens = ["env:TEST_DEDUPE_INGEST_TOKEN"]\n')
    config = load_config(path)
    ids = ["via-submitter", "via-client", "via-http", "via-cli"]
    _finish(_store(redis_client, pg_engine), ids, tenant="default")
    _archive(redis_client, pg_engine)
    _gone(redis_client, "default", ids)

    def lead(event_id: str) -> dict[str, str]:
        return {"event_id": event_id, "to": f"{event_id}@example.com", "subject": "s", "text": "t"}

    report = Submitter(config, client=redis_client).submit([lead("via-submitter"), lead("new-1")])
    assert (report.duplicates, report.accepted) == (["via-submitter"], ["new-1"])

    with Client.from_config(path) as client:
        report = client.submit([lead("via-client"), lead("new-2")])
    assert (report.duplicates, report.accepted) == (["via-client"], ["new-2"])

    with TestClient(create_app(config, client=redis_client, with_control=False)) as http:
        answer = http.post("/v1/events", json=[lead("via-http"), lead("new-3")], headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 202, answer.text
    assert (answer.json()["duplicates"], answer.json()["accepted"]) == (["via-http"], ["new-3"])

    jsonl = path.parent / "events.jsonl"
    jsonl.write_text(json.dumps(lead("via-cli")) + "\n" + json.dumps(lead("new-4")) + "\n")
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "submit", str(jsonl), "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert redis_client.exists(keys.event("default", "new-4")) == 1
    assert redis_client.exists(keys.event("default", "via-cli")) == 0  # refused: nothing written


def test_with_a_database_the_stream_is_trimmed_by_age_only_past_what_the_archiver_committed(
    redis_client: redis.Redis, pg_engine: Engine
) -> None:
    retention = Retention(hot=60, dedupe_window=600, stream_max_age=1)
    store = StatusStore(redis_client, retention=retention, cold=DeliveryLogReader(pg_engine))
    _finish(store, [f"old-{i}" for i in range(300)])
    time.sleep(1.5)
    _finish(store, ["new"])
    stream = keys.events_stream("acme")
    assert redis_client.xlen(stream) == 602  # older than stream_max_age, but not archived: kept
    archiver = Archiver(redis_client, pg_engine, consumer="test", hot=60, stream_max_age=1)
    pending = Archiver(redis_client, pg_engine, consumer="slow", batch=2, hot=60, stream_max_age=1)
    pending.streams()
    pending._read([stream], 10)  # two old entries read but never committed by their consumer
    while archiver.run_once(block_ms=50).entries:
        pass
    assert redis_client.xlen(stream) == 602  # the oldest pending entry holds the trim back
    pending.claim_idle_ms = 0
    pending.run_once(block_ms=50)  # claims and commits them
    archiver.trim([stream])
    # XTRIM MINID ~ frees whole stream nodes (100 entries each), so a tail of the old node may stay
    assert redis_client.xlen(stream) < 120
    with pg_engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM delivery_events WHERE outcome = 'sent'")).scalar_one() == 301
