"""Decide a bounce reason from status code, reply code, SMTP command and diagnostic text.

Order (Sisimai-like): a reason the MTA family already knows → first-tier text probes →
the enhanced status code → second-tier text patterns → code classes → on_hold/undefined.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pipeline.bounces.reason_patterns import has_soft_evidence, matches, normalise
from pipeline.models import HARD_REASONS

STATUS_REASONS: dict[str, str] = {
    "2.1.5": "delivered",
    "4.1.6": "has_moved",
    "4.1.7": "rejected",
    "4.1.8": "rejected",
    "4.1.9": "system_error",
    "4.2.1": "blocked",
    "4.2.2": "mailbox_full",
    "4.2.3": "exceed_limit",
    "4.2.4": "filtered",
    "4.3.1": "system_full",
    "4.3.2": "not_accept",
    "4.3.3": "system_error",
    "4.3.5": "system_error",
    "4.4.1": "expired",
    "4.4.2": "network_error",
    "4.4.3": "system_error",
    "4.4.4": "network_error",
    "4.4.5": "system_full",
    "4.4.6": "network_error",
    "4.4.7": "expired",
    "4.4.8": "network_error",
    "4.5.3": "system_error",
    "4.5.5": "system_error",
    "4.6.0": "content_error",
    "4.6.2": "content_error",
    "4.6.5": "content_error",
    "4.7.1": "blocked",
    "4.7.2": "blocked",
    "4.7.5": "security_error",
    "4.7.6": "security_error",
    "4.7.7": "security_error",
    "4.7.12": "security_error",
    "4.7.15": "security_error",
    "4.7.16": "mesg_too_big",
    "4.7.24": "auth_failure",
    "4.7.25": "require_ptr",
    "4.7.26": "auth_failure",
    "4.7.28": "rate_limited",
    "4.7.500": "rate_limited",
    "5.1.0": "user_unknown",
    "5.1.1": "user_unknown",
    "5.1.2": "host_unknown",
    "5.1.3": "user_unknown",
    "5.1.4": "filtered",
    "5.1.6": "has_moved",
    "5.1.7": "rejected",
    "5.1.8": "rejected",
    "5.1.9": "system_error",
    "5.1.10": "user_unknown",
    "5.2.0": "filtered",
    "5.2.1": "suspend",
    "5.2.2": "mailbox_full",
    "5.2.3": "exceed_limit",
    "5.2.4": "filtered",
    "5.3.0": "system_error",
    "5.3.1": "system_full",
    "5.3.2": "not_accept",
    "5.3.3": "system_error",
    "5.3.4": "mesg_too_big",
    "5.3.5": "system_error",
    "5.4.0": "network_error",
    "5.4.3": "system_error",
    "5.4.4": "host_unknown",
    "5.5.2": "syntax_error",
    "5.5.3": "too_many_conn",
    "5.5.4": "system_error",
    "5.5.5": "system_error",
    "5.5.6": "syntax_error",
    "5.6.0": "content_error",
    "5.6.1": "content_error",
    "5.6.2": "content_error",
    "5.6.3": "content_error",
    "5.6.5": "content_error",
    "5.6.6": "content_error",
    "5.6.7": "content_error",
    "5.6.8": "content_error",
    "5.6.9": "content_error",
    **{f"5.7.{n}": "security_error" for n in (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 14, 15, 19)},
    "5.7.13": "suspend",
    "5.7.16": "mesg_too_big",
    "5.7.17": "has_moved",
    "5.7.18": "has_moved",
    **{f"5.7.{n}": "auth_failure" for n in (20, 21, 22, 23, 24, 26, 29)},
    "5.7.25": "require_ptr",
    "5.7.27": "not_accept",
    "5.7.28": "spam_detected",
    "5.7.30": "failed_starttls",
}

# Reasons a status code may give that text can still refine (as Sisimai's "retried" list).
VAGUE_REASONS = frozenset(
    {"undefined", "on_hold", "system_error", "security_error", "expired", "network_error", "host_unknown", "user_unknown"}
)
# A family hint that only names where the transport failed, not why: the text may still say more.
_WEAK_HINTS = VAGUE_REASONS | {"mailer_error"}
_BEFORE_DATA = frozenset({"CONN", "HELO", "MAIL", "RCPT", "STARTTLS"})
_USER_UNKNOWN_BUT = (
    "no_relaying",
    "blocked",
    "mailbox_full",
    "has_moved",
    "rejected",
    "not_accept",
    "filtered",
    "suspend",
    "bad_reputation",
)


@dataclass(frozen=True)
class Evidence:
    """What is known about one failed recipient when choosing its reason."""

    text: str  # normalised diagnostic text
    coded: str | None  # reason named by the status code
    command: str | None
    reply: int | None
    action: str | None
    hint: str | None = None
    status: str | None = None


Probe = Callable[[Evidence], bool]


def _text(reason: str) -> Probe:
    return lambda e: matches(reason, e.text)


def _coded_or_text(reason: str) -> Probe:
    return lambda e: e.coded == reason or matches(reason, e.text)


def _user_unknown(e: Evidence) -> bool:
    if e.coded == "user_unknown":
        return not any(matches(other, e.text) for other in _USER_UNKNOWN_BUT) and not has_soft_evidence(e.text)
    if e.command not in (None, "RCPT"):
        return False
    return (e.coded is None or e.coded in VAGUE_REASONS or e.coded == "filtered") and matches("user_unknown", e.text)


def _filtered(e: Evidence) -> bool:
    if e.coded == "filtered" and matches("user_unknown", e.text):
        return True
    return e.command not in _BEFORE_DATA and matches("filtered", e.text)


def _rejected(e: Evidence) -> bool:
    if e.coded == "rejected":
        return True
    if not matches("rejected", e.text):
        return False
    if e.command == "MAIL":
        return True
    if e.command == "DATA":
        return e.coded != "user_unknown"
    return e.coded is None or e.coded in {"on_hold", "undefined", "security_error", "system_error"}


def _host_unknown(e: Evidence) -> bool:
    if e.status and e.status.startswith("4.") and e.coded != "host_unknown":
        return False  # a temporary DNS failure ("Host not found, try again") is a network error
    if e.coded == "host_unknown":
        return matches("host_unknown", e.text) or not matches("network_error", e.text)
    return matches("host_unknown", e.text)


def _spam(e: Evidence) -> bool:
    if e.coded == "spam_detected":
        return True
    return e.command not in _BEFORE_DATA and matches("spam_detected", e.text)


FIRST_TIER: tuple[tuple[str, Probe], ...] = (
    ("mailbox_full", _coded_or_text("mailbox_full")),
    ("mesg_too_big", lambda e: e.coded == "mesg_too_big" or (e.coded != "exceed_limit" and matches("mesg_too_big", e.text))),
    ("exceed_limit", _coded_or_text("exceed_limit")),
    ("suspend", lambda e: e.reply == 525 or matches("suspend", e.text)),
    ("has_moved", _text("has_moved")),
    ("no_relaying", lambda e: e.command not in ("CONN", "HELO") and matches("no_relaying", e.text)),
    ("auth_failure", _coded_or_text("auth_failure")),
    ("user_unknown", _user_unknown),
    ("filtered", _filtered),
    ("require_ptr", _coded_or_text("require_ptr")),
    ("not_compliant_rfc", _text("not_compliant_rfc")),
    ("bad_reputation", _text("bad_reputation")),
    ("content_error", lambda e: not matches("spam_detected", e.text) and _coded_or_text("content_error")(e)),
    ("rejected", _rejected),
    ("host_unknown", _host_unknown),
    ("virus_detected", lambda e: e.command not in _BEFORE_DATA and matches("virus_detected", e.text)),
    ("rate_limited", _coded_or_text("rate_limited")),
    ("spam_detected", _spam),
    ("speeding", _text("speeding")),
    ("too_many_conn", _coded_or_text("too_many_conn")),
    ("blocked", _coded_or_text("blocked")),
)

SECOND_TIER: tuple[tuple[str, Probe], ...] = (
    ("mailbox_full", _text("mailbox_full")),
    ("auth_failure", _text("auth_failure")),
    ("bad_reputation", _text("bad_reputation")),
    ("speeding", _text("speeding")),
    ("spam_detected", _text("spam_detected")),
    ("virus_detected", _text("virus_detected")),
    ("policy_violation", _text("policy_violation")),
    ("no_relaying", _text("no_relaying")),
    ("system_error", _text("system_error")),
    ("network_error", _text("network_error")),
    ("suspend", _text("suspend")),
    ("content_error", _text("content_error")),
    ("system_full", _text("system_full")),
    ("not_accept", lambda e: e.reply in (521, 556) or matches("not_accept", e.text)),
    ("expired", _text("expired")),
    ("failed_starttls", lambda e: e.command == "STARTTLS" or e.reply in (523, 524, 538) or matches("failed_starttls", e.text)),
    ("security_error", _text("security_error")),
    ("mailer_error", _text("mailer_error")),
)

_CLASS_FALLBACK: dict[str, str] = {"6": "content_error", "7": "security_error"}


def decide_reason(
    *,
    status: str | None,
    reply: int | None,
    diagnostic: str,
    command: str | None = None,
    action: str | None = None,
    hint: str | None = None,
) -> str:
    """The §3 taxonomy reason for one failed recipient."""
    if (status and status.startswith("2.")) or action in ("delivered", "relayed", "expanded"):
        return "delivered"
    evidence = Evidence(
        text=normalise(diagnostic),
        coded=STATUS_REASONS.get(status) if status else None,
        command=command,
        reply=reply,
        action=action,
        hint=hint,
        status=status,
    )
    reason = _decide(evidence, status)
    if reason in HARD_REASONS and has_soft_evidence(evidence.text):
        return _softer(evidence)
    return reason


def _decide(e: Evidence, status: str | None) -> str:
    if e.hint and e.hint not in _WEAK_HINTS:
        return e.hint
    for reason, probe in FIRST_TIER:
        if reason == e.hint or probe(e):
            return reason
    if e.coded and e.coded not in VAGUE_REASONS:
        return e.coded
    for reason, probe in SECOND_TIER:
        if probe(e):
            return reason
    return _fallback(e, status)


def _softer(e: Evidence) -> str:
    """The first reason the text supports that is not hard: what a filter/block/state text means."""
    for reason, probe in (*FIRST_TIER, *SECOND_TIER):
        if reason not in HARD_REASONS and probe(e):
            return reason
    return "filtered"


def _fallback(e: Evidence, status: str | None) -> str:
    if e.hint:
        return e.hint
    if e.coded:
        return e.coded
    if status and len(status) > 2 and status[2] in _CLASS_FALLBACK:
        return _CLASS_FALLBACK[status[2]]
    if e.reply is not None and (401 <= e.reply <= 407 or 501 <= e.reply <= 507):
        return "syntax_error"
    if e.action in ("delayed", "expired"):
        return "expired"
    if e.command in ("HELO", "CONN"):
        return "blocked"
    return "on_hold" if e.text else "undefined"
