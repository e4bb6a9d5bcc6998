"""Redis holds hot state only: final events expire, dedupe outlives them, in-flight keys stay."""

from __future__ import annotations

import time

import redis

from pipeline.inbox.index import MessageIndex
from pipeline.models import LeadEvent
from pipeline.state import keys
from pipeline.state.status import Retention, StatusStore, Transition
from tests.eventually import eventually


def _event(event_id: str) -> LeadEvent:
    return LeadEvent(event_id=event_id, to=f"{event_id}@example.com", subject="s", text="t", campaign="c")


def test_a_final_event_expires_after_hot_while_an_in_flight_one_keeps_its_keys(redis_client: redis.Redis) -> None:
    store = StatusStore(redis_client, retention=Retention(hot=1, dedupe_window=30, stream_max_age=3600))
    assert store.accept([_event("done"), _event("flying")]) == [True, True]
    store.record([Transition("default", "done", "sent", {"stage": "classify"})])
    store.record([Transition("default", "flying", "deferred", {"stage": "classify"})])
    assert 0 < redis_client.ttl(keys.event("default", "done")) <= 1
    assert redis_client.ttl(keys.history("default", "done")) > 0
    assert redis_client.ttl(keys.event("default", "flying")) == -1  # no TTL while in flight
    time.sleep(2.1)
    assert not redis_client.exists(keys.event("default", "done"), keys.history("default", "done"))
    assert store.get("default", "flying") is not None
    assert store.accept([_event("done")]) == [False]  # the dedupe marker outlives the hash


def test_a_resubmission_inside_the_dedupe_window_is_a_duplicate_and_after_it_is_accepted(redis_client: redis.Redis) -> None:
    retention = Retention(hot=1, dedupe_window=3, stream_max_age=3600, dedupe_bucket=1)
    store = StatusStore(redis_client, retention=retention)
    store.accept([_event("e1")])
    store.record([Transition("default", "e1", "sent", {})])
    time.sleep(1.6)  # hash gone, marker still there
    assert not redis_client.exists(keys.event("default", "e1"))
    assert store.accept([_event("e1")]) == [False]
    eventually(lambda: len(redis_client.keys(keys.dedupe_buckets("default") + "*")), lambda n: n == 0, timeout=8)
    assert store.accept([_event("e1")]) == [True]


def test_the_stream_is_trimmed_by_age(redis_client: redis.Redis) -> None:
    store = StatusStore(redis_client, retention=Retention(hot=60, dedupe_window=60, stream_max_age=1))
    old = [f"old-{i}" for i in range(300)]
    store.accept([_event(e) for e in old])
    store.record([Transition("default", e, "sent", {}) for e in old])
    time.sleep(1.5)
    store.accept([_event("new")])
    store.record([Transition("default", "new", "sent", {})])
    # XTRIM MINID ~ frees whole stream nodes (100 entries each), so a tail of the old node may stay
    assert redis_client.xlen(keys.events_stream("default")) < 120


def test_message_id_entries_expire_after_the_feedback_window(redis_client: redis.Redis) -> None:
    index = MessageIndex(redis_client, ttl=1)
    index.remember([("default", "<abc@mail.example>", "e1")])
    assert index.find(["<ABC@mail.example>"], ["default"]) is not None
    time.sleep(1.6)
    assert index.find(["<abc@mail.example>"], ["default"]) is None
