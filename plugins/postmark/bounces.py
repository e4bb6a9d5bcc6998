"""Postmark SMTP replies (smtp.postmarkapp.com)."""

from __future__ import annotations

from pipeline.feedback.replies import ReplyRule, match_rules
from pipeline.models import AccountSignal, SendReply, Verdict

REPLY_RULES: tuple[ReplyRule, ...] = (
    ReplyRule(
        r"sender signature not (?:defined|confirmed)|sender signature|not a valid sender signature|"
        r"account is pending approval",
        codes=(550, 554, 451),
        reason="rejected",
        signal=AccountSignal.AUTH_FAILED,
        permanent=False,
    ),
    ReplyRule(r"inactive recipient|marked as inactive|hard bounce|spam complaint", codes=(550, 554, 406), reason="filtered"),
    ReplyRule(
        r"run out of credits|no credits|account .{0,20} paused|sending .{0,20} suspended|monthly limit",
        codes=(550, 554, 451, 421),
        reason="rate_limited",
        signal=AccountSignal.QUOTA_EXHAUSTED,
    ),
    ReplyRule(
        r"invalid (?:server )?api token|authentication failed|bad credentials",
        codes=(535, 530, 534),
        reason="security_error",
        signal=AccountSignal.AUTH_FAILED,
    ),
    ReplyRule(r"rate limit|too many|throttl", codes=(421, 429, 451), reason="rate_limited", signal=AccountSignal.THROTTLED),
)


def classify_reply(reply: SendReply) -> Verdict | None:
    return match_rules(REPLY_RULES, reply)
