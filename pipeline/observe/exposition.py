"""Exposition: the `/metrics` registry of one exporter (instruments summed over processes + Redis state).

Single-process (`mailpipe serve` without `PROMETHEUS_MULTIPROC_DIR`): mailpipe's own registry
(`metrics.REGISTRY`) and the process's default one (process and GC collectors) are forwarded.

Kept apart from the instruments so that importing `metrics` (every stage does) never pulls in the
state collector, which reads the status snapshot, which reads the limiters.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, make_asgi_app
from prometheus_client.core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

from pipeline.observe import metrics
from pipeline.observe.metrics import (
    ACCOUNT_SIGNALS,
    BOUNCES,
    COMPLAINTS,
    DEAD_LETTERS,
    DELIVERY_LATENCY,
    HOOK_ERRORS,
    LIMITER_WAIT,
    SEND_ATTEMPTS,
    SEND_DURATION,
    SEND_FAILURES,
    SEND_RESULTS,
    SMTP_REPLIES,
    STAGE_DURATION,
    STAGE_FAILURES,
    STAGE_IN,
    STAGE_IN_PROGRESS,
    STAGE_LAST_SUCCESS,
    STAGE_OUT,
    THROTTLES,
    config_accounts,
    precreate,
)
from pipeline.observe.state_collector import STATE_METRICS, StateCollector

if TYPE_CHECKING:
    from pipeline.config import Config


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR")


def metrics_registry(config: Config) -> CollectorRegistry:
    """Instruments (summed over processes in multiprocess mode) + Redis state, for one exporter."""
    precreate(config_accounts(config))
    directory = multiprocess_dir()
    if directory:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    else:
        registry = CollectorRegistry()
        registry.register(_Forward(metrics.REGISTRY))  # mailpipe's instruments
        registry.register(_Forward(REGISTRY))  # the process's own (process_*, python_gc_*, …)
    registry.register(StateCollector(config))
    return registry


class _Forward:
    """Expose another registry's metrics (the process default one) inside ours."""

    def __init__(self, source: CollectorRegistry) -> None:
        self.source = source

    def collect(self) -> Iterable[Metric]:
        return self.source.collect()


_cached: list[tuple[Config, CollectorRegistry]] = []


def render_metrics(config: Config) -> bytes:
    """The `/metrics` body (Prometheus text format) for `mailpipe serve` or any exporter."""
    if not _cached or _cached[0][0] is not config:
        _cached[:] = [(config, metrics_registry(config))]
    return generate_latest(_cached[0][1])


def metrics_asgi_app(config: Config) -> Any:
    """An ASGI app serving `/metrics`, to mount in `mailpipe serve`."""
    return make_asgi_app(metrics_registry(config))


def defined_metric_names() -> set[str]:
    """Every sample family name mailpipe can expose (instruments and scrape-time state)."""
    names = {name for name in STATE_METRICS}
    for metric in (
        STAGE_IN,
        STAGE_OUT,
        STAGE_FAILURES,
        STAGE_IN_PROGRESS,
        STAGE_DURATION,
        STAGE_LAST_SUCCESS,
        DEAD_LETTERS,
        SEND_ATTEMPTS,
        SEND_FAILURES,
        SMTP_REPLIES,
        SEND_DURATION,
        SEND_RESULTS,
        ACCOUNT_SIGNALS,
        BOUNCES,
        COMPLAINTS,
        DELIVERY_LATENCY,
        THROTTLES,
        LIMITER_WAIT,
        HOOK_ERRORS,
    ):
        for family in metric.describe():
            names.add(family.name + ("_total" if family.type == "counter" else ""))
    return names
