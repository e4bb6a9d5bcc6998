"""Prometheus metrics, prefix `mailpipe_` (docs/architecture.md: "Edges").

Two kinds:
- instruments updated where things happen (stages, send, classify, limiter); in worker processes
  they live in `PROMETHEUS_MULTIPROC_DIR` files that the exporter sums across processes;
- state read from Redis at scrape time by `StateCollector` (queues, workers, accounts, outcome
  totals, suppression): shared by every process, so it is read, never counted twice.

Labels are low-cardinality only: stage, queue, account, provider, outcome, reason, reason class,
reply class, signal, hook, plugin. Never an address, an event id or free text. Account and provider
values come from the config; reasons are mapped onto the fixed taxonomy (anything else is `other`).

Every instrument lives in `REGISTRY`, mailpipe's own, never in prometheus-client's global registry:
a process that imports mailpipe as a library (`pipeline.Client`) keeps its own `/metrics` as it was.
The exporters (`mailpipe worker --metrics-port`, `mailpipe serve`) expose this registry (see
`exposition`); in multiprocess mode the values travel through `PROMETHEUS_MULTIPROC_DIR` as before.
Instruments elsewhere (http, oauth, bounces, feedback) take `Counter` from here, so they register there too.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import prometheus_client
from prometheus_client import CollectorRegistry

from pipeline.models import STAGES

if TYPE_CHECKING:
    from pipeline.config import Config
    from pipeline.models import SendReply

REPLY_CLASSES = ("2xx", "4xx", "5xx", "transport")
HEALTH_STATES = ("up", "paused", "auth_failed")
SIGNALS = ("throttled", "auth_failed", "quota_exhausted", "connection_failed")
RESULTS = ("sent", "deferred", "bounced", "throttled", "rerouted", "failed", "rejected", "suppressed")

REASON_CLASSES: dict[str, tuple[str, ...]] = {
    "none": ("delivered", "undefined"),
    "recipient": ("user_unknown", "host_unknown", "has_moved", "not_accept", "mailbox_full", "exceed_limit", "suspend"),
    "reputation": ("blocked", "bad_reputation", "require_ptr", "spam_detected", "filtered", "rejected", "no_relaying"),
    "policy": ("policy_violation", "auth_failure", "security_error", "failed_starttls", "not_compliant_rfc"),
    "content": ("content_error", "mesg_too_big", "virus_detected", "syntax_error"),
    "rate": ("too_many_conn", "speeding", "rate_limited"),
    "transient": ("network_error", "system_error", "system_full", "mailer_error", "expired", "on_hold"),
    "not_bounce": ("vacation", "feedback"),
}
_CLASS_OF = {reason: cls for cls, reasons in REASON_CLASSES.items() for reason in reasons}
REASONS = frozenset(_CLASS_OF)

REGISTRY = CollectorRegistry(auto_describe=True)
# The instruments below register in REGISTRY, never in prometheus-client's global registry.
Counter = functools.partial(prometheus_client.Counter, registry=REGISTRY)
Gauge = functools.partial(prometheus_client.Gauge, registry=REGISTRY)
Histogram = functools.partial(prometheus_client.Histogram, registry=REGISTRY)

_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_WAIT_BUCKETS = (0.01, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 1800.0, 3600.0)
_LATENCY_BUCKETS = (0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 24 * 3600.0, 72 * 3600.0)

# Per stage ---------------------------------------------------------------------------------------
STAGE_IN = Counter("mailpipe_stage_messages_in_total", "Emails a stage took in (a broker message carries up to 100).", ["stage"])
STAGE_OUT = Counter("mailpipe_stage_messages_out_total", "Emails a stage finished (forwarded or given an outcome).", ["stage"])
STAGE_FAILURES = Counter(
    "mailpipe_stage_failures_total", "Emails whose stage batch raised (infrastructure error; the broker retries).", ["stage"]
)
STAGE_IN_PROGRESS = Gauge(
    "mailpipe_stage_messages_in_progress", "Emails a stage is working on now.", ["stage"], multiprocess_mode="livesum"
)
STAGE_DURATION = Histogram(
    "mailpipe_stage_batch_duration_seconds",
    "Time a stage took for one broker message (a batch of emails).",
    ["stage"],
    buckets=_DURATION_BUCKETS,
)
STAGE_LAST_SUCCESS = Gauge(
    "mailpipe_stage_last_success_timestamp_seconds", "When a stage last finished a batch.", ["stage"], multiprocess_mode="max"
)
DEAD_LETTERS = Counter(
    "mailpipe_dead_letters_total", "Emails a stage set aside in the dead-letter store (its batch-mates carried on).", ["stage"]
)

# Sending -----------------------------------------------------------------------------------------
SEND_ATTEMPTS = Counter("mailpipe_send_attempts_total", "SMTP transactions tried.", ["account", "provider"])
SEND_FAILURES = Counter("mailpipe_send_failures_total", "SMTP transactions not answered 2xx.", ["account", "provider"])
SMTP_REPLIES = Counter(
    "mailpipe_smtp_replies_total",
    "SMTP transactions by reply class (2xx/4xx/5xx/transport).",
    ["account", "provider", "reply_class"],
)
SEND_DURATION = Histogram(
    "mailpipe_send_duration_seconds",
    "One SMTP transaction, waiting for a pooled session included.",
    ["account"],
    buckets=_DURATION_BUCKETS,
)

# Classify ----------------------------------------------------------------------------------------
SEND_RESULTS = Counter(
    "mailpipe_send_results_total", "Classified send results.", ["account", "provider", "result", "reason_class"]
)
ACCOUNT_SIGNALS = Counter(
    "mailpipe_account_signals_total",
    "Account signals from replies (not the recipient's fault).",
    ["account", "provider", "signal"],
)
BOUNCES = Counter("mailpipe_bounces_total", "Bounces by reason, hard or soft.", ["account", "provider", "reason", "kind"])
# Labelled, like every instrument here: an unlabelled one writes its multiprocess file at import,
# before `mailpipe worker` has made the metrics directory.
BOUNCE_PARSE_ERRORS = Counter(
    "mailpipe_bounce_parse_internal_errors",
    "Mails the bounce parser failed on (a parser bug, not a bad mail).",
    ["parser"],
)
COMPLAINTS = Counter("mailpipe_complaints_total", "Spam complaints (ARF feedback).", ["provider", "reason"])
DELIVERY_LATENCY = Histogram(
    "mailpipe_delivery_latency_seconds",
    "From first routing to the final outcome at classify.",
    ["outcome"],
    buckets=_LATENCY_BUCKETS,
)

# Plugins -----------------------------------------------------------------------------------------
HOOK_ERRORS = Counter(
    "mailpipe_plugin_hook_errors_total",
    "Observer hook calls (mailpipe_delivery_event) that raised: logged and counted, never failing a batch.",
    ["hook", "plugin"],
)

# Rate limiting -----------------------------------------------------------------------------------
THROTTLES = Counter("mailpipe_throttles_total", "Provider throttle signals that backed an account off.", ["account"])
LIMITER_WAIT = Histogram(
    "mailpipe_limiter_wait_seconds", "Delay the rate limiter gave an email before send.", ["account"], buckets=_WAIT_BUCKETS
)


def reason_class(reason: str | None) -> str:
    return _CLASS_OF.get(reason or "undefined", "other")


def reason_label(reason: str | None) -> str:
    """A taxonomy reason, or `other`: label values must stay a closed set."""
    return reason if reason in REASONS else "other"


def reply_class(reply: SendReply) -> str:
    """2xx / 4xx / 5xx from the server's code, `transport` when there was no usable answer."""
    code = reply.code
    if code is not None and (200 <= code < 300 or 400 <= code < 600):
        return f"{code // 100}xx"
    return "transport"


@contextmanager
def stage_batch(stage: str, count: int) -> Iterator[None]:
    """In / in-progress / out (or failures) / duration / last success for one stage batch."""
    started = time.perf_counter()
    STAGE_IN.labels(stage).inc(count)
    in_progress = STAGE_IN_PROGRESS.labels(stage)
    in_progress.inc(count)
    try:
        yield
    except BaseException:
        STAGE_FAILURES.labels(stage).inc(count)
        raise
    else:
        STAGE_OUT.labels(stage).inc(count)
        STAGE_LAST_SUCCESS.labels(stage).set(time.time())
    finally:
        in_progress.dec(count)
        STAGE_DURATION.labels(stage).observe(time.perf_counter() - started)


TENANT_ACCOUNTS = "tenants"  # the one `account` label all non-default tenants' accounts share


def account_label(ref: str) -> str:
    """The deployment's own accounts by name; every tenant's account aggregated, so label sets stay
    bounded however many tenants connect accounts (per-tenant figures: `mailpipe status --tenant`)."""
    return TENANT_ACCOUNTS if "/" in ref else ref


def send_reply(account: str, provider: str, reply: SendReply) -> None:
    """One SMTP transaction was tried (call it only when the server was really asked)."""
    account = account_label(account)
    SEND_ATTEMPTS.labels(account, provider).inc()
    if not reply.accepted:
        SEND_FAILURES.labels(account, provider).inc()
    SMTP_REPLIES.labels(account, provider, reply_class(reply)).inc()
    SEND_DURATION.labels(account).observe(reply.elapsed)


def send_result(account: str, provider: str, result: str, reason: str | None) -> None:
    account = account_label(account)
    SEND_RESULTS.labels(account, provider, result, reason_class(reason)).inc()


def account_signal(account: str, provider: str, signal: str) -> None:
    account = account_label(account)
    if signal in SIGNALS:
        ACCOUNT_SIGNALS.labels(account, provider, signal).inc()


def bounce(provider: str, reason: str | None, *, hard: bool, account: str = "unknown") -> None:
    """Count a bounce: at send time (classify) or later (webhook, bounce mailbox: account may be unknown)."""
    account = account_label(account)
    BOUNCES.labels(account, provider, reason_label(reason), "hard" if hard else "soft").inc()


def bounce_parse_internal_error() -> None:
    BOUNCE_PARSE_ERRORS.labels("bounce").inc()


def complaint(provider: str, reason: str | None = "feedback") -> None:
    """Count a spam complaint (webhook or ARF report)."""
    COMPLAINTS.labels(provider, reason_label(reason)).inc()


def delivery_latency(outcome: str, seconds: float) -> None:
    DELIVERY_LATENCY.labels(outcome).observe(max(0.0, seconds))


def dead_letter(stage: str) -> None:
    DEAD_LETTERS.labels(stage).inc()


def hook_error(hook: str, plugin: str) -> None:
    HOOK_ERRORS.labels(hook, plugin).inc()


def throttled(account: str) -> None:
    account = account_label(account)
    THROTTLES.labels(account).inc()


def limiter_wait(account: str, seconds: float) -> None:
    account = account_label(account)
    LIMITER_WAIT.labels(account).observe(max(0.0, seconds))


def precreate(accounts: Sequence[tuple[str, str]]) -> None:
    """Create the known label sets at zero, so rates and alerts see a series before the first event."""
    for stage in STAGES:
        for metric in (STAGE_IN, STAGE_OUT, STAGE_FAILURES, STAGE_IN_PROGRESS, STAGE_LAST_SUCCESS, DEAD_LETTERS):
            metric.labels(stage)
        STAGE_DURATION.labels(stage)
    providers = sorted({provider for _, provider in accounts})
    for account, provider in accounts:
        SEND_ATTEMPTS.labels(account, provider)
        SEND_FAILURES.labels(account, provider)
        SEND_DURATION.labels(account)
        THROTTLES.labels(account)
        LIMITER_WAIT.labels(account)
        for cls in REPLY_CLASSES:
            SMTP_REPLIES.labels(account, provider, cls)
        for signal in SIGNALS:
            ACCOUNT_SIGNALS.labels(account, provider, signal)
        SEND_RESULTS.labels(account, provider, "sent", "none")
        for kind in ("hard", "soft"):
            BOUNCES.labels(account, provider, "other", kind)
    for provider in providers:
        COMPLAINTS.labels(provider, "feedback")
    for outcome in ("sent", "bounced", "failed"):
        DELIVERY_LATENCY.labels(outcome)


def config_accounts(config: Config) -> list[tuple[str, str]]:
    return [(a.name, a.provider) for a in config.accounts]
