"""Counters of the HTTP edge. Labels are fixed sets: a provider name from the URL is only used once
a plugin claimed it, so a stranger's path cannot grow the label space."""

from __future__ import annotations

from pipeline.observe.metrics import Counter  # registers in mailpipe's own registry, never the global one

WEBHOOK_OUTCOMES = ("accepted", "rejected", "invalid", "too_large", "unknown_provider")
INGEST_RESULTS = ("accepted", "duplicate", "refused")
LINK_KINDS = ("unsubscribe", "click", "open")

WEBHOOK_REQUESTS = Counter("mailpipe_webhook_requests_total", "Provider webhook requests by outcome.", ["provider", "outcome"])
INGEST_EVENTS = Counter("mailpipe_ingest_events_total", "Lead events posted to POST /v1/events, by result.", ["result"])
BAD_LINKS = Counter(
    "mailpipe_link_token_failures_total", "Unsubscribe, click and open requests whose token did not verify.", ["kind"]
)

for _result in INGEST_RESULTS:
    INGEST_EVENTS.labels(_result)
for _kind in LINK_KINDS:
    BAD_LINKS.labels(_kind)
WEBHOOK_REQUESTS.labels("unknown", "unknown_provider")
