"""The sweeper re-drives stalled events, once, and leaves moving or finished ones alone."""

from __future__ import annotations

import json
import time

import pytest
import redis
from dramatiq.brokers.stub import StubBroker

from pipeline.context import StageContext
from pipeline.models import LeadEvent, RenderedMessage, RouteRequest
from pipeline.runtime.enqueue import Enqueuer
from pipeline.runtime.sweeper import identity, progress_of, redriven_count, sweep
from pipeline.stages.batch import Forward
from pipeline.state import keys
from pipeline.state.status import StatusStore, Transition

pytestmark = pytest.mark.chaos


def event(event_id: str, tenant: str = "default") -> LeadEvent:
    return LeadEvent.model_validate({"event_id": event_id, "tenant": tenant, "to": "a@b.example", "subject": "s", "text": "t"})


def queued(broker: StubBroker) -> list[str]:
    return [item for message in broker.queues["mailpipe.render"].queue for item in json.loads(message)["args"][0]["items"]]


def test_an_event_with_no_progress_past_the_threshold_is_redriven_to_render_exactly_once(
    ctx: StageContext, redis_client: redis.Redis
) -> None:
    status = StatusStore(redis_client)
    status.accept([event("stuck"), event("fresh"), event("other-tenant", "acme")])
    redis_client.zadd(keys.pending("default"), {"stuck": time.time() - 100})
    redis_client.zadd(keys.pending("acme"), {"other-tenant": time.time() - 100})
    broker = StubBroker()
    enqueuer = Enqueuer(broker)

    first = sweep(ctx, enqueuer, stalled_after=30)
    again = sweep(ctx, enqueuer, stalled_after=30)

    assert sorted(first.redriven) == [("acme", "other-tenant"), ("default", "stuck")]
    assert again.redriven == []
    assert sorted(LeadEvent.model_validate_json(i).event_id for i in queued(broker)) == ["other-tenant", "stuck"]
    stuck = status.get("default", "stuck")
    assert stuck is not None and stuck.history[-1]["state"] == "redriven" and stuck.outcome is None
    assert redriven_count(redis_client) == 1 and redriven_count(redis_client, "acme") == 1


def test_an_event_that_stays_stuck_is_redriven_again_with_doubling_waits(ctx: StageContext, redis_client: redis.Redis) -> None:
    start = time.time()
    StatusStore(redis_client).accept([event("stubborn")])
    redis_client.zadd(keys.pending("default"), {"stubborn": start - 100})
    enqueuer = Enqueuer(StubBroker())
    redriven_at = []
    for offset in range(0, 200):
        ctx.clock = lambda offset=offset: start + offset
        if sweep(ctx, enqueuer, stalled_after=30).redriven:
            redriven_at.append(offset)
    assert redriven_at == [0, 30, 90]  # stalled 30 s; then waits of 30 s and 60 s past the threshold
    assert redriven_count(redis_client) == 3


def test_waiting_and_finished_events_are_not_redriven_and_finished_ones_leave_the_pending_set(
    ctx: StageContext, redis_client: redis.Redis
) -> None:
    status = StatusStore(redis_client)
    status.accept([event("waiting"), event("done")])
    old = time.time() - 100
    redis_client.zadd(keys.pending("default"), {"waiting": old, "done": old})
    progress_of(redis_client, [Forward("send", RouteRequest(message=rendered("waiting")).to_json(), 3600)], time.time()).write()
    redis_client.zadd(keys.pending("default"), {"done": old})
    redis_client.hset(keys.event("default", "done"), "outcome", "sent")  # finished behind the set's back
    broker = StubBroker()

    report = sweep(ctx, Enqueuer(broker), stalled_after=30)

    assert report.redriven == [] and queued(broker) == []
    assert redis_client.zscore(keys.pending("default"), "done") is None
    assert redis_client.zscore(keys.pending("default"), "waiting") > time.time() + 3000


def test_progress_never_puts_a_finished_event_back_in_the_pending_set(redis_client: redis.Redis) -> None:
    status = StatusStore(redis_client)
    status.accept([event("fin")])
    status.record([Transition("default", "fin", "sent")])
    progress_of(redis_client, [Forward("classify", RouteRequest(message=rendered("fin")).to_json())], time.time()).write()
    assert redis_client.zscore(keys.pending("default"), "fin") is None


def rendered(event_id: str) -> RenderedMessage:
    return RenderedMessage(event=event(event_id), subject="s", text="t", message_id="<m@x>")


@pytest.mark.parametrize("event_id", ["plain", 'with "quotes" and \\ backslash', "ünïcode ✉", "data-first"])
def test_the_identity_of_any_stage_item_is_its_lead_event(event_id: str) -> None:
    lead = LeadEvent.model_validate(
        {
            "event_id": event_id,
            "tenant": "t-1",
            "to": "a@b.example",
            "subject": "s",
            "text": "t",
            "data": {"event_id": "decoy", "tenant": "decoy"},
            "metadata": {"event_id": "decoy"},
        }
    )
    message = RenderedMessage(event=lead, subject="s", text="t", message_id="<m@x>")
    for item in (lead.to_json(), RouteRequest(message=message).to_json()):
        assert identity(item) == ("t-1", event_id)


def test_with_thousands_of_tenants_the_stalled_ones_are_found_in_few_round_trips_and_the_limit_holds(
    ctx: StageContext, redis_client: redis.Redis
) -> None:
    slugs = [f"t{i:05d}" for i in range(1200)]  # more than two scan chunks
    late = [event("late-1", "t01199"), event("late-2", "t00600")]
    StatusStore(redis_client).accept([event(f"moving-{s}", s) for s in slugs] + late)
    redis_client.zadd(keys.pending("t01199"), {"late-1": time.time() - 100})
    redis_client.zadd(keys.pending("t00600"), {"late-2": time.time() - 100})
    commands: list[int] = []
    real = redis.client.Pipeline.execute

    def counting(self: redis.client.Pipeline, *args: object, **kwargs: object) -> object:
        commands.append(len(self.command_stack))
        return real(self, *args, **kwargs)

    redis.client.Pipeline.execute = counting  # type: ignore[method-assign]
    try:
        limited = sweep(ctx, Enqueuer(StubBroker()), stalled_after=30, limit=1)
        found = sweep(ctx, Enqueuer(StubBroker()), stalled_after=30)
    finally:
        redis.client.Pipeline.execute = real  # type: ignore[method-assign]
    assert limited.redriven == [("t00600", "late-2")]  # the limit stops the sweep at the first one
    assert found.redriven == [("t01199", "late-1")]
    scans = [n for n in commands if n >= 100]
    assert len(scans) == 2 + 3, commands  # first sweep stops in chunk 2; the second reads all three chunks
