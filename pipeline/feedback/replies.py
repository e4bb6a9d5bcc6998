"""Classify a live SMTP reply or transport error into a Verdict.

See docs/architecture.md, "Messages between stages" and "Outcomes and classification".

Order: account signals (throttling, login, sending quota) → recipient rules → RFC 3463
enhanced code and diagnostic text → RFC 5321 basic code. Everything is a table row;
provider plugins reuse `ReplyRule` and `match_rules` for their quirks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from pipeline.bounces.codes import find_status
from pipeline.bounces.reasons import decide_reason
from pipeline.models import AccountSignal, RecipientEvent, SendReply, TransportError, Verdict

_UNITS: dict[str, float] = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}
_RETRY_AFTER = re.compile(
    r"(?:try again|retry|wait|again|back off|blocked for|deferred for)\D{0,30}?(\d{1,6})\s*"
    r"(s|secs?|seconds?|m|mins?|minutes?|h|hours?)\b",
    re.I,
)


@dataclass(frozen=True)
class ReplyRule:
    """One row: a text pattern (and optional codes) and the verdict it implies.

    `codes` holds basic codes (550) and/or enhanced prefixes ("5.7.1", "4.7."); empty means any.
    `event` defaults to the code class (2xx sent, 4xx deferred, 5xx bounced), or deferred when the
    row names an account signal. `reason` defaults to the taxonomy reason found from code and text.
    """

    pattern: str
    codes: tuple[int | str, ...] = ()
    event: RecipientEvent | None = None
    reason: str | None = None
    signal: AccountSignal = AccountSignal.OK
    retry_after: float | None = None
    permanent: bool | None = None

    def regex(self) -> re.Pattern[str]:
        return _compiled(self.pattern)

    def applies(self, reply: SendReply) -> bool:
        if reply.code is None:
            return False
        if self.codes and not any(_code_matches(c, reply) for c in self.codes):
            return False
        return bool(self.regex().search(reply.text or ""))


_CACHE: dict[str, re.Pattern[str]] = {}


def _compiled(pattern: str) -> re.Pattern[str]:
    regex = _CACHE.get(pattern)
    if regex is None:
        regex = _CACHE[pattern] = re.compile(pattern, re.I | re.S)
    return regex


def enhanced_of(reply: SendReply) -> str | None:
    klass = str(reply.code)[0] if reply.code else None
    return reply.enhanced or find_status(reply.text or "", klass)


def _code_matches(code: int | str, reply: SendReply) -> bool:
    if isinstance(code, int):
        return reply.code == code
    enhanced = enhanced_of(reply) or ""
    return enhanced == code or (code.endswith(".") and enhanced.startswith(code))


def parse_retry_after(text: str) -> float | None:
    """Seconds to wait when the server says so ("try again in 15 minutes")."""
    match = _RETRY_AFTER.search(text or "")
    if not match:
        return None
    unit = match.group(2).lower().rstrip("s") or "s"
    unit = {"sec": "s", "second": "s", "min": "m", "minute": "m", "hour": "h"}.get(unit, unit)
    return float(match.group(1)) * _UNITS.get(unit, 1)


def _default_event(reply: SendReply, signal: AccountSignal) -> RecipientEvent:
    if signal != AccountSignal.OK:
        return RecipientEvent.DEFERRED
    code = reply.code or 0
    if 200 <= code < 300:
        return RecipientEvent.SENT
    return RecipientEvent.BOUNCED if code >= 500 else RecipientEvent.DEFERRED


def verdict_for(rule: ReplyRule, reply: SendReply) -> Verdict:
    event = rule.event or _default_event(reply, rule.signal)
    enhanced = enhanced_of(reply)
    reason = rule.reason or _reason_from_codes(reply, enhanced)
    retry_after = rule.retry_after
    if rule.signal == AccountSignal.THROTTLED or event == RecipientEvent.DEFERRED:
        retry_after = parse_retry_after(reply.text) or retry_after
    return Verdict(
        event=event,
        permanent=rule.permanent if rule.permanent is not None else event == RecipientEvent.BOUNCED,
        reason=reason,
        code=reply.code,
        enhanced=enhanced,
        text=reply.text,
        account_signal=rule.signal,
        retry_after=retry_after,
    )


def match_rules(rules: Iterable[ReplyRule], reply: SendReply) -> Verdict | None:
    """The verdict of the first row that applies, or None."""
    for rule in rules:
        if rule.applies(reply):
            return verdict_for(rule, reply)
    return None


_T = AccountSignal.THROTTLED
_A = AccountSignal.AUTH_FAILED
_Q = AccountSignal.QUOTA_EXHAUSTED

# Decided first: these slow, pause or exhaust the *account*; they never count against the recipient.
ACCOUNT_RULES: tuple[ReplyRule, ...] = (
    ReplyRule(
        r"daily (?:user )?(?:message |sending |send )?(?:quota|limit)|sending (?:quota|limit) (?:exceeded|reached)|"
        r"message quota exceeded|exceeded (?:the|your) (?:daily )?(?:sending|message|send) (?:limit|quota)|"
        r"too many messages sent today|daily limit exceeded|user has exceeded (?:the )?(?:daily|hourly) sending|"
        r"sending limits? (?:exceeded|reached)|quota of .{0,30} (?:emails|messages) (?:per|a) day",
        codes=(421, 450, 451, 452, 454, 550, 552, 554),
        reason="rate_limited",
        signal=_Q,
    ),
    ReplyRule(
        r"too many (?:[\w-]+ ){0,3}(?:connections|sessions)|connection (?:rate )?limit",
        codes=(421, 450, 451, 454),
        reason="too_many_conn",
        signal=_T,
    ),
    ReplyRule(
        r"throttl|rate (?:limit|exceeded)|maximum sending rate|too many|try again later|slow down|"
        r"unusual rate|temporarily (?:deferred|rate limited)|\bts0[1-4]\b|\btss0\d\b|sending too fast",
        codes=(421, 450, 451, 454, "4.7."),
        reason="rate_limited",
        signal=_T,
    ),
    ReplyRule(r".", codes=(535,), reason="security_error", signal=_A),
    ReplyRule(
        r"auth|login|credential|password|username",
        codes=(530, 534, 538, 454, "5.7.8", "5.7.9"),
        reason="security_error",
        signal=_A,
    ),
    ReplyRule(
        r"5\.7\.(?:0|8|9|11|14|57|139|3)\b.*auth|smtpclientauthentication is disabled|client was not authenticated|"
        r"authentication (?:unsuccessful|required|failed)",
        codes=(530, 550, 554, 451),
        reason="security_error",
        signal=_A,
    ),
)

# Recipient-level quirks not captured by codes alone.
RECIPIENT_RULES: tuple[ReplyRule, ...] = (
    ReplyRule(r"unauthenticated|\bspf\b|\bdkim\b|\bdmarc\b|5\.7\.2[0-6]", codes=("5.7.", "4.7."), reason="auth_failure"),
    ReplyRule(r"sendasdenied|not (?:allowed|authori[sz]ed) to send (?:as|on behalf)", reason="rejected"),
    ReplyRule(
        r"message (?:size|length) exceeds|message too (?:big|large)|size limit",
        codes=(552, 554, "5.3.4", "5.2.3"),
        reason="mesg_too_big",
    ),
)

# RFC 5321 basic codes: used when neither the enhanced code nor the text decided.
BASIC_REASONS: dict[int, str] = {
    421: "system_error",
    450: "on_hold",
    451: "system_error",
    452: "system_full",
    454: "system_error",
    500: "syntax_error",
    501: "syntax_error",
    502: "syntax_error",
    503: "syntax_error",
    504: "syntax_error",
    521: "not_accept",
    530: "security_error",
    534: "security_error",
    535: "security_error",
    538: "security_error",
    550: "on_hold",
    551: "has_moved",
    552: "mailbox_full",
    553: "rejected",
    554: "on_hold",
    555: "syntax_error",
    556: "not_accept",
}

# Transport errors: no reply at all → the recipient waits, the account may be at fault.
TRANSPORT: dict[TransportError, tuple[str, AccountSignal]] = {
    TransportError.CONNECT: ("network_error", AccountSignal.CONNECTION_FAILED),
    TransportError.TLS: ("failed_starttls", AccountSignal.CONNECTION_FAILED),
    TransportError.AUTH: ("security_error", AccountSignal.AUTH_FAILED),
    TransportError.TIMEOUT: ("network_error", AccountSignal.CONNECTION_FAILED),
    TransportError.DROPPED: ("network_error", AccountSignal.CONNECTION_FAILED),
    TransportError.PROTOCOL: ("system_error", AccountSignal.CONNECTION_FAILED),
}

_UNDECIDED = frozenset({"on_hold", "undefined"})


def _reason_from_codes(reply: SendReply, enhanced: str | None) -> str:
    code = reply.code or 0
    if 200 <= code < 300:
        return "delivered"
    reason = decide_reason(status=enhanced, reply=reply.code, diagnostic=reply.text or "")
    if reason in _UNDECIDED or reason == "delivered":
        return BASIC_REASONS.get(code, "undefined")
    return reason


def classify_reply(reply: SendReply) -> Verdict:
    """The core classifier (the `trylast` fallback of `mailpipe_classify_reply`)."""
    if reply.error is not None:
        reason, signal = TRANSPORT[reply.error]
        return Verdict(
            event=RecipientEvent.DEFERRED,
            reason=reason,
            text=reply.text,
            account_signal=signal,
            code=reply.code,
            enhanced=reply.enhanced,
        )
    if reply.code is None:
        return Verdict(event=RecipientEvent.DEFERRED, reason="undefined", text=reply.text)
    if 200 <= reply.code < 300:
        return Verdict(event=RecipientEvent.SENT, reason="delivered", code=reply.code, enhanced=reply.enhanced, text=reply.text)
    found = match_rules(ACCOUNT_RULES, reply) or match_rules(RECIPIENT_RULES, reply)
    return found or verdict_for(ReplyRule(r"."), reply)
