"""One bad item never touches its batch-mates: classify and send batches through the real batch runner.

Classify: a `mailpipe_delivery_event` observer raises for one email of 50 → the 49 others get every
effect exactly once (hook calls, metrics, soft-bounce counts, throttle records, one history entry
each) and the one is dead-lettered with the hook's error, its real outcome kept. Send: one email
whose ledger key Redis refuses (WRONGTYPE) fails alone; the others finish in the same batch instead
of waiting out the ledger lease; and the send actor makes no blocking Redis call on its event loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from dramatiq.asyncio import EventLoopThread, set_event_loop_thread
from prometheus_client.metrics import MetricWrapperBase
from testbed import account_toml

from pipeline.config import Config, load_config
from pipeline.context import StageContext, build_context
from pipeline.models import LeadEvent, RenderedMessage, RoutedMessage, RouteRequest, SendReply, SendResult
from pipeline.observe import metrics
from pipeline.plugin_host.hookspecs import hookimpl
from pipeline.plugin_host.manager import LoadOptions, build_plugin_manager
from pipeline.runtime import actors
from pipeline.runtime import resources as runtime
from pipeline.runtime.broker import make_broker
from pipeline.runtime.enqueue import Enqueuer, payload
from pipeline.smtp.devsmtp import DevSMTPServer, TLSFiles
from pipeline.stages import classify, route
from pipeline.stages.batch import Forward, run_batch
from pipeline.state import keys

BATCH = 50
BAD = 16  # a soft bounce: it has effects before the hook runs, and they must happen exactly once too

# index % 5 → the server's reply, and what classify makes of it
REPLIES = [
    (250, "2.0.0 OK"),  # sent
    (550, "5.7.1 rejected: client host blocked by reputation list"),  # soft bounce
    (550, "5.1.1 user unknown"),  # hard bounce
    (451, "4.3.0 try later"),  # deferred → rate_limit
    (454, "Throttling failure: Maximum sending rate exceeded"),  # throttled → rate_limit
]
FINAL_KINDS = (0, 1, 2)


def event_id(i: int) -> str:
    return f"iso-{i:03d}"


def lead(i: int) -> LeadEvent:
    return LeadEvent.model_validate({"event_id": event_id(i), "to": f"lead{i}@receiver.example", "subject": "s", "text": "t"})


def routed(i: int, account: str = "alpha") -> RoutedMessage:
    message = RenderedMessage(event=lead(i), subject="s", text="t\n", message_id=f"<{event_id(i)}@sender.example>")
    return RoutedMessage(
        message=message,
        account=account,
        route="nordics",
        from_addr="a@sender.example",
        envelope_from="a@sender.example",
        first_attempt_at=time.time() - 5,
    )


def send_result(i: int) -> SendResult:
    code, text = REPLIES[i % 5]
    return SendResult(routed=routed(i), reply=SendReply(account="alpha", code=code, enhanced=text.split()[0], text=text))


def total(metric: MetricWrapperBase, suffix: str = "_total", **labels: str) -> float:
    """Sum of a metric's samples (any registry) whose name ends with `suffix` and whose labels match."""
    return sum(
        sample.value
        for family in metric.collect()
        for sample in family.samples
        if sample.name.endswith(suffix) and all(sample.labels.get(k) == v for k, v in labels.items())
    )


class DeliveryRecorder:
    """An observer plugin: records every delivery event and fails for one email."""

    def __init__(self, failing: str) -> None:
        self.failing = failing
        self.calls: Counter[str] = Counter()

    @hookimpl
    def mailpipe_delivery_event(self, event: Any) -> None:
        self.calls[event.event_id] += 1
        if event.event_id == self.failing:
            raise RuntimeError("crm webhook down")


@pytest.fixture
def observed_ctx(config: Config) -> Iterator[tuple[StageContext, DeliveryRecorder, DeliveryRecorder]]:
    pm = build_plugin_manager(LoadOptions())  # a private manager: the recorders never leak into other tests
    calm = DeliveryRecorder(failing="")  # registered first, so pluggy calls it after the failing one
    recorder = DeliveryRecorder(event_id(BAD))
    pm.register(calm, name="calm-observer")
    pm.register(recorder, name="delivery-recorder")
    yield build_context(config, pm=pm), recorder, calm


def test_a_raising_delivery_hook_for_one_item_of_50_leaves_the_49_others_every_effect_exactly_once(
    observed_ctx: tuple[StageContext, DeliveryRecorder, DeliveryRecorder], redis_client: redis.Redis
) -> None:
    ctx, recorder, calm = observed_ctx
    ctx.status.accept([lead(i) for i in range(BATCH)])
    finals = [i for i in range(BATCH) if i % 5 in FINAL_KINDS]
    bounces = [i for i in range(BATCH) if i % 5 in (1, 2)]
    throttled = [i for i in range(BATCH) if i % 5 == 4]
    before = {
        "results": total(metrics.SEND_RESULTS),
        "bounces": total(metrics.BOUNCES),
        "latency": total(metrics.DELIVERY_LATENCY, "_count"),
        "throttles": total(metrics.THROTTLES, account="alpha"),
        "signals": total(metrics.ACCOUNT_SIGNALS, signal="throttled"),
        "hook_errors": total(metrics.HOOK_ERRORS, hook="mailpipe_delivery_event"),
    }

    forwards = run_batch("classify", [send_result(i).to_json() for i in range(BATCH)], classify.decode, classify.handle, ctx)

    # hooks: every final email observed exactly once, the failing one included (it raised once);
    # the other plugin saw that email too: one plugin's error does not stop the next
    assert recorder.calls == Counter({event_id(i): 1 for i in finals})
    assert calm.calls == recorder.calls
    # metrics: one result and one signal per email, one bounce and one latency per final bounce/sent
    assert total(metrics.SEND_RESULTS) - before["results"] == BATCH
    assert total(metrics.BOUNCES) - before["bounces"] == len(bounces)
    assert total(metrics.DELIVERY_LATENCY, "_count") - before["latency"] == len(finals)
    assert total(metrics.THROTTLES, account="alpha") - before["throttles"] == len(throttled)
    assert total(metrics.ACCOUNT_SIGNALS, signal="throttled") - before["signals"] == len(throttled)
    # the hook's error is counted, not raised
    assert total(metrics.HOOK_ERRORS, hook="mailpipe_delivery_event") - before["hook_errors"] == 1
    assert total(metrics.HOOK_ERRORS, plugin="calm-observer") == 0
    # Redis effects: one throttle record per throttled email, one soft-bounce count per soft bounce
    state = redis_client.hgetall(keys.account_state("default", "alpha"))
    assert int(state[b"throttles"]) == len(throttled)
    for i in range(BATCH):
        soft = redis_client.zcard(keys.soft_bounces("default", f"lead{i}@receiver.example"))
        assert soft == (1 if i % 5 == 1 else 0), (i, soft)
    suppressed = ctx.suppression.lookup("default", [f"lead{i}@receiver.example" for i in range(BATCH)])
    assert [i for i, s in enumerate(suppressed) if s] == [i for i in range(BATCH) if i % 5 == 2]
    # status: every email has its real outcome and exactly one classify entry in its history
    outcomes = ctx.status.outcomes([event_id(i) for i in range(BATCH)])
    expected = {0: "sent", 1: "bounced", 2: "bounced", 3: None, 4: None}
    assert outcomes == {event_id(i): expected[i % 5] for i in range(BATCH)}
    for i in range(BATCH):
        status = ctx.status.get("default", event_id(i))
        assert status is not None and [h["state"] for h in status.history][1:] == [
            ("sent", "bounced", "bounced", "deferred", "throttled")[i % 5]
        ], (i, status.history)
    # forwards: each deferred or throttled email once, to rate_limit
    assert sorted(f.stage for f in forwards) == ["rate_limit"] * (BATCH - len(finals))
    assert len({f.item for f in forwards}) == len(forwards)
    # the one: dead-lettered with the hook's error (and only it)
    dead = ctx.status.dead_letters()
    assert set(dead) == {event_id(BAD)}
    assert dead[event_id(BAD)]["stage"] == "classify" and "crm webhook down" in dead[event_id(BAD)]["error"]


class ExplodingQuirk:
    """A provider quirk plugin that raises for one recipient."""

    @hookimpl
    def mailpipe_prepare_message(self, account: Any, message: Any) -> None:
        if message.message.event.to.startswith("lead7@"):
            raise RuntimeError("quirk exploded")


def test_a_plugin_raising_for_one_email_of_a_route_batch_fails_that_email_alone(config: Config) -> None:
    pm = build_plugin_manager(LoadOptions())
    pm.register(ExplodingQuirk(), name="exploding-quirk")
    ctx = build_context(config, pm=pm)
    ctx.status.accept([lead(i) for i in range(10)])
    ctx.suppression.add("default", "lead3@receiver.example", "user_unknown")
    requests = [RouteRequest(message=routed(i).message).to_json() for i in range(10)]

    forwards = run_batch("route", requests, route.decode, route.handle, ctx)

    assert sorted(RoutedMessage.from_stage(f.item).event.event_id for f in forwards) == [
        event_id(i) for i in range(10) if i not in (3, 7)
    ]
    outcomes = ctx.status.outcomes([event_id(i) for i in range(10)])
    assert {k: v for k, v in outcomes.items() if v} == {event_id(3): "suppressed", event_id(7): "failed"}
    dead = ctx.status.dead_letters()
    assert set(dead) == {event_id(7)} and "quirk exploded" in dead[event_id(7)]["error"]


# --- send ------------------------------------------------------------------------------------------

SEND_BATCH = 20
BAD_SEND = 7


@pytest.fixture
def fast_config(write_config: Callable[..., Path], smtp_server: DevSMTPServer, tls_files: TLSFiles) -> Callable[..., Config]:
    """A config whose limits never hold a message back (these emails skip rate_limit), also for the actor."""

    def write(extra: str = "") -> Config:
        port, ca = smtp_server.ports["starttls"], tls_files.ca_file
        accounts = "".join(account_toml(name, port, ca, per_second=1_000_000) for name in ("alpha", "beta", "gamma"))
        return load_config(write_config(accounts=accounts, extra=extra))

    return write


@pytest.fixture
def send_actor(fast_config: Callable[..., Config]) -> Iterator[Any]:
    """The send actor as a worker runs it: the global broker and Dramatiq's event-loop thread."""
    broker = make_broker(fast_config().broker)
    thread = EventLoopThread(logging.getLogger("test.loop"))
    thread.start(timeout=5)
    set_event_loop_thread(thread)
    runtime.reset()
    try:
        yield actors._send
    finally:
        runtime.reset()  # closes the send runtime on its loop: SMTP QUIT, Redis released
        set_event_loop_thread(None)
        thread.stop()
        broker.close()


@pytest.fixture
def forwarded(monkeypatch: pytest.MonkeyPatch) -> list[Forward]:
    """What the actor hands to the enqueuer (still enqueued for real)."""
    seen: list[Forward] = []
    real = Enqueuer.forward

    def forward(self: Enqueuer, forwards: Any, then: Any = None) -> int:
        forwards = list(forwards)
        seen.extend(forwards)
        return real(self, forwards, then=then)

    monkeypatch.setattr(Enqueuer, "forward", forward)
    return seen


def test_a_send_batch_where_one_items_ledger_call_raises_finishes_the_others_without_waiting_for_a_lease(
    fast_config: Callable[..., Config],
    redis_client: redis.Redis,
    smtp_server: DevSMTPServer,
    send_actor: Any,
    forwarded: list[Forward],
) -> None:
    ctx = build_context(fast_config())
    ctx.status.accept([lead(i) for i in range(SEND_BATCH)])
    redis_client.set(keys.ledger("default", event_id(BAD_SEND)), "not a ledger hash")  # Redis refuses its claim

    started = time.monotonic()
    send_actor(payload([routed(i).to_json() for i in range(SEND_BATCH)]))
    elapsed = time.monotonic() - started

    others = [event_id(i) for i in range(SEND_BATCH) if i != BAD_SEND]
    results = [SendResult.from_stage(f.item) for f in forwarded if f.stage == "classify"]
    assert sorted(r.routed.event.event_id for r in results) == others  # each other email, once, to classify
    assert all(r.reply.code == 250 and not r.reply.from_ledger for r in results)
    assert all(f.delay == 0 for f in forwarded) and not [f for f in forwarded if f.stage == "send"]
    assert elapsed < 10, f"the batch took {elapsed:.1f}s"
    assert sorted(m.rcpt_to[0] for m in smtp_server.snapshot()) == sorted(
        f"lead{i}@receiver.example" for i in range(SEND_BATCH) if i != BAD_SEND
    )
    dead = ctx.status.dead_letters()
    assert set(dead) == {event_id(BAD_SEND)}
    assert dead[event_id(BAD_SEND)]["stage"] == "send" and "WRONGTYPE" in dead[event_id(BAD_SEND)]["error"]
    assert ctx.status.outcomes([event_id(BAD_SEND)]) == {event_id(BAD_SEND): "failed"}


@pytest.fixture
def redis_on_the_loop(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every blocking (redis-py sync) command sent from a thread that is running an event loop."""
    calls: list[str] = []
    real = redis.connection.AbstractConnection.send_packed_command

    def send_packed_command(self: Any, command: Any, check_health: bool = True) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass  # a worker thread: blocking is what it is for
        else:
            calls.append(threading.current_thread().name)
        real(self, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", send_packed_command)
    return calls


def test_the_send_actor_makes_no_blocking_redis_call_on_its_event_loop(
    fast_config: Callable[..., Config],
    redis_client: redis.Redis,
    smtp_server: DevSMTPServer,
    send_actor: Any,
    forwarded: list[Forward],
    redis_on_the_loop: list[str],
) -> None:
    ctx = build_context(fast_config(extra="[send]\nmax_message_bytes = 5000\n"))  # the actor's context loads it too
    ctx.status.accept([lead(i) for i in range(SEND_BATCH)])
    items = [routed(i).to_json() for i in range(SEND_BATCH)]
    big = routed(3)
    items[3] = big.model_copy(update={"message": big.message.model_copy(update={"text": "x" * 20_000})}).to_json()
    items.append("not even json")  # dead-lettered at decode

    send_actor(payload(items))

    assert redis_on_the_loop == []
    assert len([f for f in forwarded if f.stage == "classify"]) == SEND_BATCH - 1
    assert ctx.status.outcomes([event_id(3)]) == {event_id(3): "rejected"}
    assert event_id(3) in ctx.status.dead_letters()
    assert redis_client.hlen("mailpipe-broker:mailpipe.classify.msgs") >= 1  # the enqueue ran (off the loop)
