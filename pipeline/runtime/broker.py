"""The broker, chosen in one place: Redis by default, amqp:// for RabbitMQ, stub:// for unit tests.

The Redis broker is Dramatiq's, made to ride out a Redis restart (see `ResilientRedisBroker`).

This is the one module that uses Dramatiq internals: the private `_RedisConsumer`, the broker's
`_dispatch`, `_should_do_maintenance`, `_max_unpack_size` and its dispatch script's argument order
(written against Dramatiq 2.2.1, bounded `<3` in pyproject.toml).
tests/packaging/test_dramatiq_internals.py checks each of them and fails first on an upgrade.

`build_broker` makes one and touches nothing else: what clients use (`pipeline.Client`, `Submitter`),
so the calling process keeps its own Dramatiq broker and encoder. `make_broker` is the worker's:
it also installs the broker and mailpipe's encoder process-wide and adds the worker middleware.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import uuid4

import dramatiq
import redis
import structlog
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import current_millis, dq_name
from dramatiq.errors import ConnectionClosed
from dramatiq.middleware import AsyncIO
from redis.client import Pipeline
from redis.exceptions import NoScriptError

from pipeline.runtime.wire import OrjsonEncoder

if TYPE_CHECKING:
    from pipeline.config import BrokerConfig

BROKER_URL_ENV = "MAILPIPE_BROKER_URL"
LOOP_LAG_DIR_ENV = "MAILPIPE_LOOP_LAG_DIR"
# How long a worker keeps retrying one broker write (enqueue, ack) while Redis is unreachable
# before it gives up on it (the sweeper is then the last resort). Same patience as the send
# stage's ledger writes: a restart or fail-over of Redis takes seconds, not minutes.
WORKER_PATIENCE = 300.0
# Redis errors that mean "not reachable right now" (BusyLoadingError, a restarted Redis reading its
# AOF, is a ConnectionError).
UNREACHABLE = (redis.ConnectionError, redis.TimeoutError)

# Back-off exponent an empty poll starts from: dramatiq's 5 ms factor times 2^2 → 20-40 ms.
MIN_POLL_MISSES = 2

log = structlog.get_logger("mailpipe.broker")
T = TypeVar("T")


class ResilientRedisBroker(RedisBroker):
    """Dramatiq's Redis broker, made to lose nothing when Redis restarts under running workers.

    Dramatiq alone (2.x) loses messages on a Redis outage, and not only until the next restart:
    - a consumer's fetch fails → it drops the delayed messages (`eta`) it holds in memory and its
      prefetched messages; they stay in its own acks set in Redis, which is only requeued once the
      worker process is dead;
    - a delay-queue consumer whose due message cannot be enqueued goes down the "unexpected error"
      path, whose requeue raises a raw redis ConnectionError out of `ConsumerThread.run`: the
      thread dies, and this worker never consumes that delay queue again (with every worker's
      `mailpipe.send.DQ` consumer dead, every rate-limited message waits for the sweeper forever);
    - a retry that cannot be enqueued (Retries middleware) is logged and the message acked: lost.

    Here a worker waits for Redis instead (`patience` seconds, 0 = fail at once as before, the
    right choice for a submitting client): consumers keep what they hold in memory and poll until
    Redis is back, enqueues and acks are retried, and when a consumer (re)starts or reconnects it
    requeues whatever its own acks set holds that no thread of this process is still working on.
    """

    def __init__(self, *, patience: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.patience = patience
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._held: dict[str, set[str]] = {}  # queue → redis message ids handed out, not yet acked

    @property
    def consumer_class(self) -> type[_RedisConsumer]:
        return ResilientConsumer

    def emit_before(self, signal: str, *args: Any, **kwargs: Any) -> None:
        if signal == "worker_shutdown":
            self.stopping.set()  # stop waiting for Redis: the process is going away
        super().emit_before(signal, *args, **kwargs)

    def retrying(self, what: str, call: Callable[[], T], patience: float | None = None) -> T:
        """call(), retried with back-off while Redis is unreachable, for up to `patience` seconds."""
        patience = self.patience if patience is None else patience
        deadline = time.monotonic() + patience
        pause = 0.05
        warned = False
        while True:
            try:
                result = call()
            except UNREACHABLE as exc:
                if self.stopping.is_set() or time.monotonic() + pause > deadline:
                    raise
                if not warned:
                    log.warning("broker_unreachable_retrying", operation=what, error=f"{type(exc).__name__}: {exc}")
                    warned = True
                time.sleep(pause * random.uniform(0.8, 1.2))
                pause = min(pause * 2, 1.0)
                continue
            if warned:
                log.info("broker_reachable_again", operation=what)
            return result

    def enqueue_batch(self, messages: list[tuple[dramatiq.Message[Any], int | None]], then: Callable[[Pipeline], None]) -> None:
        """Enqueue `messages` (each with its delay in ms, or None) and run the writes `then` queues,
        all in one pipelined round trip. What `enqueue` does per message, without a round trip
        each: a stage hop sends its next message(s) and the sweeper's progress together.
        Dramatiq's own dispatch script is called as `enqueue` calls it (see `_dispatch`)."""
        prepared = []
        for message, delay in messages:
            message = message.copy(options={"redis_message_id": str(uuid4())})
            if delay is not None:
                message = message.copy(queue_name=dq_name(message.queue_name), options={"eta": current_millis() + delay})
            self.emit_before("enqueue", message, delay)
            prepared.append((message, delay, message.encode()))
        dispatch_sha = self.scripts["dispatch"].sha

        def run() -> None:
            pipe = self.client.pipeline(transaction=False)
            for message, _, data in prepared:
                pipe.evalsha(
                    dispatch_sha, 1, self.namespace,
                    "enqueue", current_millis(), message.queue_name, self.broker_id, self.heartbeat_timeout,
                    self.dead_message_ttl, self._should_do_maintenance("enqueue"), self._max_unpack_size(),
                    message.options["redis_message_id"], data,
                )  # fmt: skip
            then(pipe)
            results = pipe.execute(raise_on_error=False)
            for (message, _, data), result in zip(prepared, results, strict=False):
                if isinstance(result, NoScriptError):  # Redis restarted or flushed its scripts
                    self.do_enqueue(message.queue_name, message.options["redis_message_id"], data)
            errors = [r for r in results if isinstance(r, Exception) and not isinstance(r, NoScriptError)]
            if errors:
                raise errors[0]

        self.retrying("enqueue", run)  # a retry resends the same message ids (see do_enqueue)
        for message, delay, _ in prepared:
            self.emit_after("enqueue", message, delay)

    def shares_server(self, client: redis.Redis) -> bool:
        """Whether `client` talks to the same Redis server and database as the broker."""
        ours, theirs = self.client.connection_pool.connection_kwargs, client.connection_pool.connection_kwargs
        return all(ours.get(k) == theirs.get(k) for k in ("host", "port", "path", "db"))

    def do_enqueue(self, queue_name: str, message_id: str, data: bytes) -> Any:
        # The same redis message id on every try: a try that ran but lost its reply leaves at
        # most a second copy of the id in the list (whose data the first ack deletes).
        enqueue = self._dispatch("enqueue")
        return self.retrying("enqueue", lambda: enqueue(queue_name, message_id, data))

    # Messages this process holds (prefetched, delayed in memory, being processed): never
    # requeued by the orphan recovery below.
    def hold(self, queue_name: str, message_id: str) -> None:
        with self._lock:
            self._held.setdefault(queue_name, set()).add(message_id)

    def release(self, queue_name: str, message_ids: Iterable[str]) -> None:
        with self._lock:
            held = self._held.get(queue_name)
            if held is not None:
                held.difference_update(message_ids)

    def held(self, queue_name: str) -> set[str]:
        with self._lock:
            return set(self._held.get(queue_name, ()))

    def acks_key(self, queue_name: str) -> str:
        return f"{self.namespace}:__acks__.{self.broker_id}.{queue_name}"

    def requeue_orphans(self, queue_name: str) -> int:
        """Put back what this process fetched from `queue_name` but no longer holds in memory
        (dropped by a consumer that hit a connection error). Raises if Redis is unreachable."""
        held = self.held(queue_name)  # before reading the acks: only this queue's consumer adds
        members = self.client.smembers(self.acks_key(queue_name))
        orphans = sorted(m.decode() if isinstance(m, bytes) else str(m) for m in members)
        orphans = [m for m in orphans if m not in held]
        if orphans:
            self.do_requeue(queue_name, *orphans)
            log.warning("broker_orphans_requeued", queue=queue_name, count=len(orphans))
        return len(orphans)


class ResilientConsumer(_RedisConsumer):
    """A Redis consumer that waits for Redis instead of failing, and recovers its orphans."""

    broker: ResilientRedisBroker

    def __init__(self, broker: ResilientRedisBroker, queue_name: str, prefetch: int, timeout: int) -> None:
        super().__init__(broker, queue_name, prefetch, timeout)
        if queue_name.endswith(".DQ"):
            # A delay queue's messages live in its consumer thread's memory, which Dramatiq empties
            # before it makes a new consumer: nothing of the previous one is held any more.
            broker.release(queue_name, broker.held(queue_name))
        self._recover = True  # a new consumer: a previous one of this queue may have dropped messages
        self._pause = 0.05
        self._down_since: float | None = None

    def __next__(self) -> MessageProxy | None:
        try:
            if self._recover and not self.message_cache:
                self.broker.requeue_orphans(self.queue_name)
                self._recover = False
            # Dramatiq polls an empty queue again after 5-10 ms, then 10-20, 20-40 … up to the worker
            # timeout, starting over after every message: under a steady trickle each of the ten
            # queues per process was polled ~100 times a second, a quarter of the worker CPU at half
            # load. Starting the back-off at 20-40 ms keeps a busy queue responsive for a fraction.
            self.misses = max(self.misses, MIN_POLL_MISSES)
            message: MessageProxy | None = super().__next__()
        except (ConnectionClosed, *UNREACHABLE) as exc:
            self._unreachable(exc)
            return None
        if self._down_since is not None:
            log.info("broker_reachable_again", queue=self.queue_name, seconds=round(time.monotonic() - self._down_since, 1))
            self._down_since = None
            self._pause = 0.05
        if message is not None:
            self.broker.hold(self.queue_name, message.options["redis_message_id"])
        return message

    def _unreachable(self, exc: BaseException) -> None:
        """Keep everything held in memory (delayed messages included) and poll until Redis is back;
        a fetch whose reply was lost may have left orphans: recover them once reconnected."""
        if self.broker.patience <= 0:
            raise exc if isinstance(exc, ConnectionClosed) else ConnectionClosed(exc)
        self._recover = True
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.warning("broker_unreachable", queue=self.queue_name, error=f"{type(exc).__name__}: {exc}")
        time.sleep(self._pause * random.uniform(0.8, 1.2))
        self._pause = min(self._pause * 2, 1.0)
        return None

    def ack(self, message: MessageProxy) -> None:
        self._settle("ack", message)

    def nack(self, message: MessageProxy) -> None:
        self._settle("nack", message)

    def _settle(self, command: str, message: MessageProxy) -> None:
        message_id = message.options["redis_message_id"]
        dispatch = getattr(self.broker, f"do_{command}")
        try:
            self.broker.retrying(command, lambda: dispatch(self.queue_name, message_id))
        except UNREACHABLE as exc:
            raise ConnectionClosed(exc) from None  # Dramatiq retries it every few seconds
        finally:
            self.queued_message_ids.discard(message.message_id)
        self.broker.release(self.queue_name, [message_id])

    def requeue(self, messages: Iterable[MessageProxy]) -> None:
        message_ids = [m.options["redis_message_id"] for m in messages]
        if not message_ids:
            return
        # No longer held in memory either way: if Redis is down they are orphans, recovered later.
        self.broker.release(self.queue_name, message_ids)
        try:
            self.broker.do_requeue(self.queue_name, *message_ids)
        except UNREACHABLE as exc:
            self._recover = True
            raise ConnectionClosed(exc) from None  # never a raw redis error out of a consumer thread


DEFAULT_NAMESPACE = "mailpipe-broker"


def broker_kind(url: str) -> str:
    """ "redis", "rabbitmq" (amqp://, amqps://) or "stub" (stub://), as `BrokerConfig.kind` says."""
    if url.startswith(("amqp://", "amqps://")):
        return "rabbitmq"
    if url.startswith("stub://"):
        return "stub"
    return "redis"


def build_broker(
    url: str,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    heartbeat_timeout_ms: int = 15_000,
    maintenance_chance: int = 0,
    patience: float = 0.0,
    middleware: list[dramatiq.Middleware] | None = None,
) -> dramatiq.Broker:
    """A broker for `url` and nothing more: not made Dramatiq's global broker, the global encoder
    untouched (stage messages encode themselves, see `enqueue.StageMessage`). Enqueue through it
    explicitly (`Enqueuer(broker)`).

    `maintenance_chance` 0 (the default, for clients): this broker never runs the Redis broker's
    dead-worker maintenance, which needs the workers' own heartbeat timeout to be safe."""
    kind = broker_kind(url)
    if kind == "rabbitmq":
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        return RabbitmqBroker(url=url, confirm_delivery=True, middleware=middleware)
    if kind == "stub":
        return StubBroker(middleware=middleware)
    return ResilientRedisBroker(
        url=url,
        namespace=namespace,
        heartbeat_timeout=heartbeat_timeout_ms,
        maintenance_chance=maintenance_chance,
        patience=patience,
        middleware=middleware,
    )


def broker_for(config: BrokerConfig, *, patience: float = 0.0) -> dramatiq.Broker:
    """`build_broker` for a config's `[broker]` section; $MAILPIPE_BROKER_URL overrides its url."""
    url = os.environ.get(BROKER_URL_ENV) or config.url
    return build_broker(
        url,
        namespace=config.namespace,
        heartbeat_timeout_ms=config.heartbeat_timeout_ms,
        maintenance_chance=config.maintenance_chance,
        patience=patience,
    )


def make_broker(config: BrokerConfig, *, patience: float = 0.0) -> dramatiq.Broker:
    """The worker's broker: `broker_for(config)` made Dramatiq's global broker, with mailpipe's
    encoder installed process-wide (workers decode with it), the AsyncIO middleware (the send
    stage's event loop) and the sweeper. Only for mailpipe's own processes: a client uses
    `build_broker`/`broker_for`, which leave the process alone.

    `patience`: how long a worker process waits for an unreachable Redis broker before an
    operation fails (0 fails fast)."""
    from pipeline.runtime.sweeper import SweeperMiddleware

    broker = broker_for(config, patience=patience)
    dramatiq.set_encoder(OrjsonEncoder())
    broker.add_middleware(AsyncIO())
    if broker_kind(os.environ.get(BROKER_URL_ENV) or config.url) != "stub":
        broker.add_middleware(SweeperMiddleware())  # a thread in each worker process only
    if os.environ.get(LOOP_LAG_DIR_ENV):  # the benchmark's event-loop lag probe (pipeline/bench/looplag.py)
        from pipeline.bench.looplag import probe_from_env

        probe = probe_from_env()
        if probe is not None:
            broker.add_middleware(probe)
    dramatiq.set_broker(broker)
    return broker
