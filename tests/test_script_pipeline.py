"""Status writes: one round trip per batch, and still correct after Redis forgot its scripts."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from pipeline.models import LeadEvent
from pipeline.state.script_pipeline import ScriptPipeline
from pipeline.state.status import StatusStore, Transition


def _event(event_id: str) -> LeadEvent:
    return LeadEvent(event_id=event_id, to="ana@example.com", subject="Hi", text="Hello")


@pytest.fixture
def round_trips() -> Any:
    counted = {"n": 0}
    send = redis.connection.AbstractConnection.send_packed_command

    def counting(self: redis.connection.AbstractConnection, *args: Any, **kwargs: Any) -> Any:
        counted["n"] += 1  # one socket write per round trip: a pipeline writes all its commands at once
        return send(self, *args, **kwargs)

    redis.connection.AbstractConnection.send_packed_command = counting  # type: ignore[method-assign]
    yield counted
    redis.connection.AbstractConnection.send_packed_command = send  # type: ignore[method-assign]


def test_accept_and_record_take_one_round_trip_each(redis_client: redis.Redis, round_trips: dict[str, int]) -> None:
    store = StatusStore(redis_client)
    store.accept([_event("warm")])
    store.record([Transition("default", "warm", "sent")])  # both scripts are loaded now
    round_trips["n"] = 0
    assert store.accept([_event("a"), _event("b"), _event("a")]) == [True, True, False]
    assert round_trips["n"] == 1
    round_trips["n"] = 0
    assert store.record([Transition("default", "a", "sent"), Transition("default", "a", "failed")]) == [True, False]
    assert round_trips["n"] == 1


def test_scripts_redis_forgot_are_loaded_and_each_call_runs_once(redis_client: redis.Redis) -> None:
    store = StatusStore(redis_client)
    store.accept([_event("warm")])
    redis_client.script_flush()
    assert store.accept([_event("c"), _event("d")]) == [True, True]
    redis_client.script_flush()
    assert store.record([Transition("default", "c", "routed"), Transition("default", "c", "sent")]) == [True, True]
    status = store.get("default", "c")
    assert status is not None and status.outcome == "sent"
    assert [h["state"] for h in status.history] == ["accepted", "routed", "sent"]


def test_an_error_in_one_command_is_raised_after_the_others_ran(redis_client: redis.Redis) -> None:
    redis_client.set("not-a-set", "x")
    pipe = ScriptPipeline(redis_client)
    pipe.pipe.sadd("not-a-set", "1")
    pipe.pipe.set("after", "ran")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        pipe.execute()
    assert redis_client.get("after") == b"ran"
