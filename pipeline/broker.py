"""The broker, chosen in one place: Redis by default, amqp:// for RabbitMQ, stub:// for unit tests."""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AsyncIO

from .config import BrokerConfig
from .sweeper import SweeperMiddleware

BROKER_URL_ENV = "MAILPIPE_BROKER_URL"


def make_broker(config: BrokerConfig) -> dramatiq.Broker:
    """The one place a broker is chosen: $MAILPIPE_BROKER_URL overrides the config's url."""
    if os.environ.get(BROKER_URL_ENV):
        config = config.model_copy(update={"url": os.environ[BROKER_URL_ENV]})
    broker: dramatiq.Broker
    if config.kind == "rabbitmq":
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        broker = RabbitmqBroker(url=config.url, confirm_delivery=True)
    elif config.kind == "stub":
        broker = StubBroker()
    else:
        from dramatiq.brokers.redis import RedisBroker

        broker = RedisBroker(
            url=config.url,
            namespace=config.namespace,
            heartbeat_timeout=config.heartbeat_timeout_ms,
            maintenance_chance=config.maintenance_chance,
        )
    broker.add_middleware(AsyncIO())
    if config.kind != "stub":
        broker.add_middleware(SweeperMiddleware())  # a thread in each worker process only
    dramatiq.set_broker(broker)
    return broker
