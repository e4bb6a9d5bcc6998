"""The actors are thin shells: with Dramatiq's stub broker and an in-process worker the pipeline runs."""

from __future__ import annotations

from collections.abc import Iterator

import dramatiq
import pytest
from dramatiq import Worker

from pipeline.config import BrokerConfig, Config
from pipeline.models import queue_name
from pipeline.runtime import resources as runtime
from pipeline.runtime.actors import declare_actors
from pipeline.runtime.broker import make_broker
from pipeline.smtp.devsmtp import DevSMTPServer
from pipeline.submit import Submitter


@pytest.fixture
def stub_broker(config: Config) -> Iterator[dramatiq.Broker]:
    broker = make_broker(BrokerConfig(url="stub://"))
    declare_actors(broker)
    runtime.reset()
    yield broker
    broker.close()
    runtime.reset()


def test_a_stub_broker_carries_events_through_all_five_stage_queues(
    config: Config, stub_broker: dramatiq.Broker, smtp_server: DevSMTPServer
) -> None:
    worker = Worker(stub_broker, worker_timeout=100)
    worker.start()
    try:
        report = Submitter(config, broker=stub_broker).submit(
            [
                {
                    "event_id": f"stub-{i}",
                    "to": f"s{i}@receiver.example",
                    "list": "nordics",
                    "template": "hello",
                    "data": {"first_name": "S", "company": "C"},
                }
                for i in range(5)
            ]
        )
        for stage in ("render", "route", "rate_limit", "send", "classify"):
            stub_broker.join(queue_name(stage), timeout=10_000)
        stub_broker.join(queue_name("classify"), timeout=10_000)
        worker.join()
    finally:
        worker.stop()
    assert runtime.context().status.outcomes(report.accepted) == {f"stub-{i}": "sent" for i in range(5)}
    assert sorted(r.rcpt_to[0] for r in smtp_server.snapshot()) == [f"s{i}@receiver.example" for i in range(5)]
