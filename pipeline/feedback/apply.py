"""Apply what happened after sending (provider webhooks, one-click unsubscribes, clicks, opens).

Each ``DeliveryEvent`` becomes a status *update* on its event (history and events stream; the
final outcome set by classify is never replaced, docs/architecture.md: "Outcomes and classification"), joins the suppression list
when it must (complaint, unsubscribe, hard bounce; soft bounces are counted), reaches the
``mailpipe_delivery_event`` observers and is counted. An event we cannot map back to an
``event_id`` still suppresses its recipient.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pluggy
import redis

from pipeline.archive.stores import reader_for, retention_of
from pipeline.config import Config
from pipeline.inbox.index import MessageIndex
from pipeline.models import DeliveryEvent, RecipientEvent, is_hard_bounce
from pipeline.observe.metrics import Counter  # registers in mailpipe's own registry, never the global one
from pipeline.state.status import StatusStore, Transition
from pipeline.state.suppression import SuppressionStore

MAX_RAW_CHARS = 16_000
TENANT = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
SOURCES = ("webhook", "unsubscribe", "click", "open")

FEEDBACK_EVENTS = Counter(
    "mailpipe_feedback_events_total",
    "Delivery events reported after sending (webhooks, unsubscribes, clicks, opens), by whether they matched an event.",
    ["source", "event", "matched"],
)
for _source in SOURCES:
    for _event in RecipientEvent:
        for _matched in ("yes", "no"):
            FEEDBACK_EVENTS.labels(_source, _event.value, _matched)


@dataclass
class FeedbackReport:
    applied: int = 0
    unmatched: int = 0
    suppressed: int = 0


def _bounded_raw(raw: Any) -> Any:
    text = json.dumps(raw, default=str)
    return raw if len(text) <= MAX_RAW_CHARS else {"truncated": text[:MAX_RAW_CHARS]}


def _code(status: str | None) -> int | None:
    return int(status[0]) * 100 if status and status[:1] in ("4", "5") else None


class FeedbackApplier:
    def __init__(self, config: Config, client: redis.Redis, pm: pluggy.PluginManager) -> None:
        self.config = config
        self.client = client
        self.pm = pm
        cold = reader_for(config)
        self.status = StatusStore(client, retention=retention_of(config), cold=cold)
        self.index = MessageIndex(client, ttl=config.retention.feedback_window, cold=cold)
        self.suppression = SuppressionStore(client)

    def event_id_for(self, event: DeliveryEvent) -> str | None:
        """The correlation data the plugin found, else the Message-ID index when something fills it."""
        if event.event_id:
            return event.event_id
        if event.message_id:
            found = self.index.find([event.message_id], [event.tenant])
            return found.event_id if found else None
        return None

    def recipient_of(self, event: DeliveryEvent, event_id: str | None) -> str | None:
        if event.recipient:
            return event.recipient
        if event_id:
            status = self.status.get(event.tenant, event_id)
            if status and status.event and isinstance(status.event.get("to"), str):
                return str(status.event["to"])
        return None

    def apply(self, events: list[DeliveryEvent], source: str) -> FeedbackReport:
        report = FeedbackReport()
        for event in events:
            if not TENANT.match(event.tenant):
                event = event.model_copy(update={"tenant": "default", "event_id": None})
            event_id = self.event_id_for(event)
            matched = False
            if event_id:
                entry: dict[str, Any] = {
                    "stage": source,
                    "provider": event.provider,
                    "reason": event.reason,
                    "enhanced": event.status,
                    "reply": (event.smtp_reply or "")[:500] or None,
                    "occurred_at": event.occurred_at,
                    **({"details": event.details} if event.details else {}),
                    **({"raw": _bounded_raw(event.raw)} if event.raw is not None else {}),
                }
                transition = Transition(
                    event.tenant, event_id, event.event.value, {k: v for k, v in entry.items() if v is not None}, update=True
                )
                matched = self.status.record([transition])[0]
            report.applied += matched
            report.unmatched += not matched
            FEEDBACK_EVENTS.labels(source, event.event.value, "yes" if matched else "no").inc()
            recipient = self.recipient_of(event, event_id if matched else None)
            if recipient and self._suppress(event, recipient, source):
                report.suppressed += 1
            self.pm.hook.mailpipe_delivery_event(event=event.model_copy(update={"event_id": event_id, "recipient": recipient}))
        return report

    def _suppress(self, event: DeliveryEvent, recipient: str, source: str) -> bool:
        origin = f"{source}:{event.provider}" if event.provider else source
        if event.event == RecipientEvent.COMPLAINED:
            return self.suppression.add(event.tenant, recipient, "feedback", source=origin)
        if event.event == RecipientEvent.UNSUBSCRIBED:
            return self.suppression.add(event.tenant, recipient, "unsubscribed", source=origin)
        if event.event != RecipientEvent.BOUNCED:
            return False
        reason = event.reason or "undefined"
        if event.permanent and is_hard_bounce(reason, _code(event.status) or 550):
            return self.suppression.add(event.tenant, recipient, reason, source=origin)
        limits = self.config.suppression
        return self.suppression.soft_bounce(
            event.tenant, recipient, limit=limits.soft_bounce_limit, window=limits.soft_bounce_window, reason=reason
        )
