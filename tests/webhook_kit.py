"""Shared by the provider webhook tests: a config with webhook keys, a served app, a sent event."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
from served import served

from pipeline.config import load_config
from pipeline.http.app import create_app
from pipeline.models import LeadEvent
from pipeline.state.status import StatusStore, Transition
from pipeline.state.suppression import SuppressionStore

RECIPIENT = "reader@receiver.example"


@contextmanager
def webhook_app(write_config: Callable[..., Path], toml: str, **create_kwargs: Any) -> Iterator[str]:
    """Serve the app for a config holding ``toml`` (the provider's [webhooks.<name>] table)."""
    config = load_config(write_config(extra=f"\n[serve]\nmax_body_bytes = 20000\n{toml}"))
    with served(create_app(config, **create_kwargs)) as url:
        yield url


@contextmanager
def failing_once_app(write_config: Callable[..., Path], toml: str, **create_kwargs: Any) -> Iterator[str]:
    """As ``webhook_app``, but applying the first request's events fails (a 500), as when Redis blips."""
    config = load_config(write_config(extra=f"\n[serve]\nmax_body_bytes = 20000\n{toml}"))
    app = create_app(config, **create_kwargs)
    feedback = app.state.serve.feedback
    real_apply = feedback.apply
    calls: list[int] = []

    def apply_failing_once(events: Any, source: str) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise redis.ConnectionError("connection reset while applying")
        return real_apply(events, source)

    feedback.apply = apply_failing_once
    with served(app) as url:
        yield url


def sent_event(client: redis.Redis, event_id: str = "wh-1", tenant: str = "default") -> None:
    """An event that went out: accepted, final outcome `sent`."""
    event = LeadEvent.model_validate({"event_id": event_id, "tenant": tenant, "to": RECIPIENT, "subject": "Hi", "text": "Hello"})
    status = StatusStore(client)
    status.accept([event])
    status.record([Transition(tenant, event_id, "sent", {"stage": "classify"})])


def states(client: redis.Redis, event_id: str = "wh-1", tenant: str = "default") -> list[str]:
    status = StatusStore(client).get(tenant, event_id)
    assert status is not None
    assert status.outcome == "sent"  # a webhook never adds a second final outcome
    return [h["state"] for h in status.history]


def suppressed(client: redis.Redis, tenant: str = "default") -> str | None:
    found = SuppressionStore(client).lookup(tenant, [RECIPIENT])[0]
    return found.reason if found else None
