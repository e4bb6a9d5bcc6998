"""What pipeline/runtime/broker.py takes from Dramatiq beyond its public API, checked name by name.

``ResilientRedisBroker`` subclasses Dramatiq's private ``_RedisConsumer`` and calls the Redis
broker's dispatch script directly (``enqueue_batch``), written against Dramatiq 2.2.1. pyproject
bounds it to ``>=2.2,<3``; when a new Dramatiq is installed anyway, this file fails first, naming
what moved, instead of workers that lose messages. Only broker.py may use these names (last test).
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import dramatiq
import pytest
from dramatiq.brokers import redis as dramatiq_redis
from dramatiq.brokers.redis import RedisBroker

ROOT = Path(__file__).resolve().parents[2]
TESTED = (2, 2)

# name on RedisBroker → the parameters (after self) broker.py calls it with
BROKER_METHODS = {"_dispatch": ["command"], "_should_do_maintenance": ["command"], "_max_unpack_size": []}
# do_enqueue, do_ack, do_nack and do_requeue are not methods: RedisBroker.__getattr__ makes them from _dispatch
DISPATCHED = ("enqueue", "ack", "nack", "requeue")
BROKER_ATTRIBUTES = ("client", "namespace", "broker_id", "heartbeat_timeout", "dead_message_ttl", "scripts")
CONSUMER_ATTRIBUTES = ("broker", "queue_name", "message_cache", "misses", "queued_message_ids")
# The dispatch script's arguments, in the order enqueue_batch passes them.
DISPATCH_ARGS = (
    "namespace = KEYS[1]",
    "command = ARGV[1]",
    "timestamp = ARGV[2]",
    "queue_name = ARGV[3]",
    "worker_id = ARGV[4]",
    "heartbeat_timeout = ARGV[5]",
    "dead_message_ttl = ARGV[6]",
    "do_maintenance = ARGV[7]",
    "max_unpack_size = ARGV[8]",
)
PRIVATE_NAMES = ("_RedisConsumer", "_dispatch", "_should_do_maintenance", "_max_unpack_size", 'scripts["dispatch"]')


def unconnected_broker() -> RedisBroker:
    """A RedisBroker pointed at a closed port: building one loads its scripts but makes no connection."""
    broker: RedisBroker = RedisBroker(url="redis://127.0.0.1:1/0")  # type: ignore[no-untyped-call]
    return broker


def _parameters(function: object) -> list[str]:
    sig = inspect.signature(function)  # type: ignore[arg-type]
    return [p.name for p in sig.parameters.values() if p.name != "self" and p.kind is not p.VAR_POSITIONAL] + [
        p.name for p in sig.parameters.values() if p.kind is p.VAR_POSITIONAL
    ]


def test_the_installed_dramatiq_is_the_major_we_tested() -> None:
    version = tuple(int(part) for part in re.findall(r"\d+", dramatiq.__version__)[:2])
    assert version[0] == TESTED[0] and version >= TESTED, (
        f"Dramatiq {dramatiq.__version__} is installed; pipeline/runtime/broker.py relies on internals of "
        f"{TESTED[0]}.{TESTED[1]}.x. Re-check every name in this file before widening the bound in pyproject.toml"
    )


@pytest.mark.parametrize("name", sorted(BROKER_METHODS))
def test_the_redis_broker_methods_we_call_exist_with_our_arguments(name: str) -> None:
    method = getattr(RedisBroker, name, None)
    assert callable(method), f"dramatiq RedisBroker.{name} is gone: ResilientRedisBroker calls it"
    assert _parameters(method) == BROKER_METHODS[name], f"RedisBroker.{name} changed its parameters"


def test_the_broker_attributes_and_the_dispatch_script_are_where_we_read_them() -> None:
    broker = unconnected_broker()
    for name in BROKER_ATTRIBUTES:
        assert hasattr(broker, name), f"dramatiq RedisBroker has no attribute {name}"
    assert "dispatch" in broker.scripts and hasattr(broker.scripts["dispatch"], "sha")
    assert isinstance(type(broker).consumer_class, property) or hasattr(RedisBroker, "consumer_class")


def test_the_private_consumer_class_keeps_its_constructor_and_state() -> None:
    consumer_class = getattr(dramatiq_redis, "_RedisConsumer", None)
    assert consumer_class is not None, "dramatiq.brokers.redis._RedisConsumer is gone: ResilientConsumer subclasses it"
    assert _parameters(consumer_class.__init__) == ["broker", "queue_name", "prefetch", "timeout"]
    for name in ("__next__", "ack", "nack", "requeue"):
        assert callable(getattr(consumer_class, name, None)), f"_RedisConsumer.{name} is gone"
    consumer = consumer_class(unconnected_broker(), "mailpipe.send", 4, 100)
    for name in CONSUMER_ATTRIBUTES:
        assert hasattr(consumer, name), f"_RedisConsumer instances have no {name}"


def test_do_commands_call_the_dispatch_script_with_the_arguments_enqueue_batch_writes() -> None:
    broker = unconnected_broker()
    calls: list[tuple[list[object], list[object]]] = []

    class Recorder:
        sha = "recorded"

        def __call__(self, *, args: list[object], keys: list[object]) -> None:
            calls.append((args, keys))

    broker.scripts["dispatch"] = Recorder()
    broker._max_unpack_size = lambda: 7999  # type: ignore[method-assign]  # the real one asks Redis once
    for command in DISPATCHED:
        getattr(broker, f"do_{command}")("mailpipe.send", "m-1", b"payload")
    assert [args[0] for args, _ in calls] == list(DISPATCHED)
    args, keys = calls[0]
    assert keys == [broker.namespace]
    assert isinstance(args[1], int)  # current_millis()
    assert args[2:6] == ["mailpipe.send", broker.broker_id, broker.heartbeat_timeout, broker.dead_message_ttl]
    assert args[7] == 7999 and args[8:] == ["m-1", b"payload"]


def test_the_dispatch_script_takes_its_arguments_in_our_order() -> None:
    script = (Path(dramatiq_redis.__file__).with_suffix("") / "dispatch.lua").read_text()
    for line in DISPATCH_ARGS:
        assert re.search(rf"local {re.escape(line)}\s", script), f"dispatch.lua no longer has `local {line}`"
    assert 'namespace .. ":__acks__." .. worker_id' in script, "the acks key layout changed (acks_key in broker.py)"


def test_only_the_broker_module_touches_dramatiq_internals() -> None:
    broker_module = ROOT / "pipeline" / "runtime" / "broker.py"
    offenders = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in sorted((ROOT / "pipeline").rglob("*.py"))
        if path != broker_module
        for name in PRIVATE_NAMES
        if name in path.read_text(encoding="utf-8")
    ]
    assert offenders == [], "Dramatiq internals outside pipeline/runtime/broker.py: " + "; ".join(offenders)
