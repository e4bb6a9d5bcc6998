"""mailpipe's Python client: submit lead events and read their status from your own code.

    from pipeline import Client

    with Client("redis://127.0.0.1:6379/0") as client:  # or Client.from_config("mailpipe.toml")
        report = client.submit([{"event_id": "lead-42", "to": "ada@example.com", "template": "welcome"}])
        client.status("lead-42")

It leaves the process it runs in as it found it:

- it enqueues through a broker of its own: Dramatiq's global broker is never set or read, and the
  global encoder is never changed (mailpipe's messages encode themselves), so an application with
  its own Dramatiq actors keeps them;
- importing it registers no Prometheus metric (mailpipe's instruments live in a registry of their
  own, `pipeline.observe.metrics.REGISTRY`, and the client path does not even import them);
- it needs the broker's and the state store's URLs only (and the database's, when the deployment
  has one): no SMTP or IMAP password, no account.

Submitting is idempotent on `event_id`: an event submitted again within `[retention] dedupe_window`
is reported as a duplicate and never sent twice. A deployment with a database keeps that window in
its delivery log, so the client needs `database_url` there (`Client.from_config` reads `[database]`);
a client without it refuses to submit to such a deployment (`DedupeInDatabase`) rather than risk a
second send.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import redis

from pipeline.errors import ConfigError, InvalidEvent
from pipeline.models import LeadEvent
from pipeline.runtime.broker import BROKER_URL_ENV, DEFAULT_NAMESPACE, broker_kind, build_broker
from pipeline.runtime.enqueue import Enqueuer
from pipeline.state.status import DedupeInDatabase, EventStatus, Retention, StatusStore
from pipeline.submit import Intake, ItemError, SubmitReport

__all__ = ["Client", "DedupeInDatabase", "EventStatus", "InvalidEvent", "ItemError", "LeadEvent", "SubmitReport"]

DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"
T = TypeVar("T")
CONFIG_ENV = "MAILPIPE_CONFIG"


class Client:
    """Submit lead events to a running mailpipe and read their status.

    `broker_url`: the broker the workers read (`[broker] url`: redis://, rediss://, amqp://).
    `redis_url`: the state store (`[redis] url`); by default the broker's Redis, as in the config.
    `namespace`: the broker's key namespace (`[broker] namespace`), if the workers changed it.
    `database_url`: the deployment's database (`[database] url`), where event_ids final beyond the
    hot window are looked up; `dedupe_window`: `[retention] dedupe_window` in seconds.
    """

    def __init__(
        self,
        broker_url: str = DEFAULT_BROKER_URL,
        redis_url: str | None = None,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        database_url: str | None = None,
        dedupe_window: float = Retention.dedupe_window,
    ) -> None:
        if redis_url is None:
            redis_url = broker_url if broker_kind(broker_url) == "redis" else DEFAULT_BROKER_URL
        self.broker_url = broker_url
        self.redis_url = redis_url
        self._broker = build_broker(broker_url, namespace=namespace, middleware=[])
        self._redis = redis.Redis.from_url(redis_url)
        self._engine: Any = None
        cold = None
        if database_url:
            from pipeline.archive.coldstore import DeliveryLogReader
            from pipeline.db.engine import make_engine

            self._engine = make_engine(database_url, pool_size=1)
            cold = DeliveryLogReader(self._engine)
        store = StatusStore(self._redis, retention=Retention(dedupe_window=dedupe_window), cold=cold)
        self._intake = Intake(Enqueuer(self._broker), store)

    @classmethod
    def from_config(cls, path: str | os.PathLike[str] | None = None) -> Client:
        """A client for the mailpipe whose config file this is (default: $MAILPIPE_CONFIG, then
        ./mailpipe.toml). Only `[broker]`, `[redis] url`, `[database] url` and `[retention]
        dedupe_window` are read: accounts and their secrets are neither checked nor resolved.
        $MAILPIPE_BROKER_URL and $MAILPIPE_DATABASE_URL override theirs, as they do for the workers."""
        from pydantic import ValidationError

        from pipeline.config.schema import BrokerConfig, RedisConfig, RetentionConfig
        from pipeline.db.settings import DatabaseConfig

        file = Path(path or os.environ.get(CONFIG_ENV) or "mailpipe.toml")
        try:
            raw = tomllib.loads(file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError([f"{file}: cannot read ({exc.strerror})"]) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError([f"{file}: {exc}"]) from None
        problems: list[str] = []

        def section(name: str, model: type[T]) -> T | None:
            try:
                return model.model_validate(raw.get(name, {}))  # type: ignore[attr-defined,no-any-return]
            except ValidationError as exc:
                problems.extend(f"{file}: {name}.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
                return None

        broker, store = section("broker", BrokerConfig), section("redis", RedisConfig)
        database, retention = section("database", DatabaseConfig), section("retention", RetentionConfig)
        if broker is None or store is None or database is None or retention is None:
            raise ConfigError(problems)
        broker_url = os.environ.get(BROKER_URL_ENV) or broker.url
        return cls(
            broker_url,
            store.url,
            namespace=broker.namespace,
            database_url=database.resolved_url(),
            dedupe_window=retention.dedupe_window,
        )

    def submit(self, events: Iterable[LeadEvent | Mapping[str, Any] | str], *, source: str = "api") -> SubmitReport:
        """Validate, accept and enqueue events (dicts, JSON text or `LeadEvent`s). A bad event is
        refused with its fields named (`report.errors`) and the rest still go; an event_id already
        known is a duplicate (`report.duplicates`) and is not sent again."""
        return self._intake.submit(events, source=source)

    def status(self, event_id: str, *, tenant: str = "default") -> EventStatus | None:
        """The event's current state, final outcome (once it has one) and history; None if unknown."""
        return self._intake.status.get(tenant, event_id)

    def outcomes(self, event_ids: Sequence[str], *, tenant: str = "default") -> dict[str, str | None]:
        """Each event's final outcome (sent, bounced, failed, rejected, suppressed), None while it has none."""
        return self._intake.status.outcomes(list(event_ids), tenant)

    def close(self) -> None:
        """Close the connections to the broker and the state store."""
        self._broker.close()
        self._redis.close()
        if self._engine is not None:
            self._engine.dispose()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client(broker_url={_safe(self.broker_url)!r}, redis_url={_safe(self.redis_url)!r})"


def _safe(url: str) -> str:
    """A URL without its password, for repr and logs."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not sep or not at:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user + ':***' if ':' in userinfo else user}@{host}"
