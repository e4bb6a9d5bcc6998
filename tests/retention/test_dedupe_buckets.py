"""The compact dedupe marker: a field in a small per-period, per-shard hash, kept for the dedupe window."""

from __future__ import annotations

import time

import redis

from pipeline.models import LeadEvent
from pipeline.state import keys
from pipeline.state.status import Retention, StatusStore, Transition


def _event(event_id: str) -> LeadEvent:
    return LeadEvent(event_id=event_id, to="lead@example.com", subject="s", text="t")


def _finish(store: StatusStore, event_ids: list[str]) -> None:
    assert all(store.accept([_event(e) for e in event_ids]))
    store.record([Transition("default", e, "sent", {}) for e in event_ids])


def test_markers_are_fields_of_few_listpack_hashes_that_expire_after_their_period_and_the_window(
    redis_client: redis.Redis,
) -> None:
    retention = Retention(hot=1, dedupe_window=600, stream_max_age=3600, dedupe_shards=8)
    store = StatusStore(redis_client, retention=retention)
    ids = [f"lead-{i}" for i in range(400)]
    _finish(store, ids)
    buckets = redis_client.keys(keys.dedupe_buckets("default") + "*")
    assert 1 <= len(buckets) <= 16  # 8 shards (two periods at most if the run crossed midnight)
    assert sum(redis_client.hlen(b) for b in buckets) == 400
    assert {redis_client.object("encoding", b) for b in buckets} == {b"listpack"}
    bucket = retention.bucket(time.time())
    ttl = redis_client.ttl(keys.dedupe_bucket("default", bucket, keys.dedupe_slot("lead-1", 8)[0]))
    end_of_period = (bucket + 1) * retention.dedupe_bucket - time.time()
    assert end_of_period + 600 - 5 <= ttl <= end_of_period + 602
    assert store.accept([_event(e) for e in ids[:3]]) == [False, False, False]


def test_a_long_event_id_is_kept_as_a_digest_and_still_deduplicated(redis_client: redis.Redis) -> None:
    store = StatusStore(redis_client, retention=Retention(hot=1, dedupe_window=600, stream_max_age=3600, dedupe_shards=4))
    long_id = "crm-" + "x" * 190
    _finish(store, [long_id])
    time.sleep(1.6)  # the status hash is gone: only the marker answers
    assert not redis_client.exists(keys.event("default", long_id))
    assert store.accept([_event(long_id)]) == [False]
    (bucket,) = redis_client.keys(keys.dedupe_buckets("default") + "*")
    (field,) = redis_client.hkeys(bucket)
    assert field.startswith(b"#") and len(field) == 33
    assert redis_client.object("encoding", bucket) == b"listpack"


def test_markers_of_every_period_inside_the_window_count_and_older_ones_do_not(redis_client: redis.Redis) -> None:
    retention = Retention(hot=1, dedupe_window=4, stream_max_age=3600, dedupe_bucket=1, dedupe_shards=2)
    store = StatusStore(redis_client, retention=retention)
    _finish(store, ["first"])
    time.sleep(1.2)
    _finish(store, ["second"])  # a later period's bucket
    time.sleep(1.0)
    assert store.accept([_event("first"), _event("second")]) == [False, False]  # both still inside the window
    time.sleep(4.5)  # past the first's period + window, and the second's
    assert store.accept([_event("first"), _event("second")]) == [True, True]


def test_a_marker_of_the_first_design_still_counts_until_it_expires(redis_client: redis.Redis) -> None:
    store = StatusStore(redis_client, retention=Retention(hot=1, dedupe_window=600, stream_max_age=3600))
    redis_client.set(keys.dedupe_marker("default", "old-style"), "1", ex=2)
    assert store.accept([_event("old-style")]) == [False]
    time.sleep(2.2)
    assert store.accept([_event("old-style")]) == [True]


def test_by_default_an_accept_probes_seven_periods_for_a_thirty_day_window() -> None:
    retention = Retention()
    assert retention.dedupe_bucket == 5 * 86_400
    assert retention.dedupe_shards == 5 * 4096  # the same listpack capacity per day as one-day periods
    now = time.time()
    assert retention.bucket(now) - retention.bucket(now - retention.dedupe_window) + 1 == 7
    assert Retention(dedupe_window=600).dedupe_bucket == 86_400
