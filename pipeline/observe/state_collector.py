"""Metrics read from Redis at scrape time: queues, workers, accounts, outcome totals, suppression.

This state is shared by every process, so one exporter reads it (no multiprocess summing).
When `mailpipe serve` and `mailpipe worker` both export it, aggregate with `max` in PromQL.
A Redis that does not answer gives `mailpipe_state_up 0` instead of a failed scrape.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import redis
import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from pipeline.config import Config
from pipeline.observe import snapshot
from pipeline.observe.metrics import HEALTH_STATES

log = structlog.get_logger("mailpipe.metrics")

# name → (type, help, labels); the single list of what this collector can expose.
STATE_METRICS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "mailpipe_state_up": ("gauge", "1 when the state in Redis could be read at this scrape.", ()),
    "mailpipe_state_scrape_duration_seconds": ("gauge", "Time spent reading state from Redis.", ()),
    "mailpipe_queue_messages": ("gauge", "Broker messages per stage queue (up to 100 emails each) by state.", ("queue", "state")),
    "mailpipe_queue_oldest_message_age_seconds": ("gauge", "How long the oldest ready message has waited.", ("queue",)),
    "mailpipe_workers_alive": ("gauge", "Dramatiq worker processes with a recent heartbeat.", ()),
    "mailpipe_workers_seen": ("gauge", "Dramatiq worker processes in the heartbeat set, alive or not yet reaped.", ()),
    "mailpipe_account_health": ("gauge", "1 for the account's current health state.", ("account", "provider", "state")),
    "mailpipe_account_daily_sent_messages": ("gauge", "Emails sent today (account's time zone day).", ("account", "provider")),
    "mailpipe_account_daily_cap_messages": ("gauge", "The per-day cap (absent when uncapped).", ("account", "provider")),
    "mailpipe_account_configured_rate_per_second": ("gauge", "Configured per-second limit.", ("account", "provider")),
    "mailpipe_account_effective_rate_per_second": ("gauge", "Per-second limit after throttle back-off.", ("account", "provider")),
    "mailpipe_events_total": ("counter", "Events accepted and final outcomes, all tenants.", ("outcome",)),
    "mailpipe_events_pending": ("gauge", "Accepted events without a final outcome yet.", ()),
    "mailpipe_suppressed_addresses": ("gauge", "Addresses on the suppression lists, all tenants.", ()),
    "mailpipe_archive_backlog_entries": (
        "gauge",
        "Events stream entries not yet committed to the delivery log (with a database only).",
        (),
    ),
}
OUTCOMES = ("accepted", "sent", "bounced", "failed", "suppressed", "rejected")


def _family(name: str) -> GaugeMetricFamily | CounterMetricFamily:
    kind, text, labels = STATE_METRICS[name]
    if kind == "counter":
        return CounterMetricFamily(name.removesuffix("_total"), text, labels=labels)
    return GaugeMetricFamily(name, text, labels=labels)


class StateCollector:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.state = redis.Redis.from_url(config.redis_url, socket_timeout=5, socket_connect_timeout=5)
        broker = config.broker
        self.broker = (
            redis.Redis.from_url(broker.url, socket_timeout=5, socket_connect_timeout=5) if broker.kind == "redis" else None
        )
        self._limits = snapshot.account_limits(config)
        self._archived = config.database.resolved_url() is not None

    def describe(self) -> Iterator[Metric]:
        for name in STATE_METRICS:
            yield _family(name)

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        families = {name: _family(name) for name in STATE_METRICS}
        try:
            self._fill(families)
            up = 1.0
        except (redis.RedisError, OSError) as exc:
            log.warning("metrics_state_unavailable", error=f"{type(exc).__name__}: {exc}")
            families = {name: _family(name) for name in STATE_METRICS}
            up = 0.0
        families["mailpipe_state_up"].add_metric([], up)
        families["mailpipe_state_scrape_duration_seconds"].add_metric([], time.perf_counter() - started)
        yield from families.values()

    def _fill(self, f: dict[str, GaugeMetricFamily | CounterMetricFamily]) -> None:
        now = time.time()
        broker = self.config.broker
        if self.broker is not None:
            for q in snapshot.queue_depths(self.broker, broker.namespace, now):
                for state, value in (("ready", q.ready), ("in_flight", q.in_flight), ("delayed", q.delayed), ("dead", q.dead)):
                    f["mailpipe_queue_messages"].add_metric([q.queue, state], value)
                f["mailpipe_queue_oldest_message_age_seconds"].add_metric([q.queue], q.oldest_age)
            seen = snapshot.workers_seen(self.broker, broker.namespace, broker.heartbeat_timeout_ms, now)
            f["mailpipe_workers_alive"].add_metric([], sum(1 for w in seen if w.alive))
            f["mailpipe_workers_seen"].add_metric([], len(seen))
        for a in snapshot.accounts(self.state, self.config, self._limits, now):
            labels = [a.name, a.provider]
            for state in HEALTH_STATES:
                f["mailpipe_account_health"].add_metric([*labels, state], 1.0 if a.health == state else 0.0)
            f["mailpipe_account_daily_sent_messages"].add_metric(labels, a.sent_today)
            if a.daily_cap:
                f["mailpipe_account_daily_cap_messages"].add_metric(labels, a.daily_cap)
            if a.configured_rate:
                f["mailpipe_account_configured_rate_per_second"].add_metric(labels, a.configured_rate)
                f["mailpipe_account_effective_rate_per_second"].add_metric(labels, a.effective_rate or 0.0)
        totals = snapshot.totals(self.state)
        for outcome in sorted({*OUTCOMES, *totals.outcomes}):
            f["mailpipe_events_total"].add_metric([outcome], totals.outcomes.get(outcome, 0))
        f["mailpipe_events_pending"].add_metric([], totals.pending)
        f["mailpipe_suppressed_addresses"].add_metric([], totals.suppressed)
        if self._archived:
            f["mailpipe_archive_backlog_entries"].add_metric([], snapshot.archive_backlog(self.state))
