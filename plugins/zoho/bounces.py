"""Zoho Mail SMTP replies (smtp.zoho.com / smtppro.zoho.*)."""

from __future__ import annotations

from pipeline.feedback.replies import ReplyRule, match_rules
from pipeline.models import AccountSignal, SendReply, Verdict

REPLY_RULES: tuple[ReplyRule, ...] = (
    ReplyRule(
        r"unusual sending activity|outgoing .{0,30}blocked|sending has been blocked|account .{0,20}blocked",
        codes=(554, 550, 553),
        reason="rejected",
        signal=AccountSignal.QUOTA_EXHAUSTED,
    ),
    ReplyRule(
        r"sender is not allowed to relay|relaying disallowed|from address .{0,40}not .{0,20}(?:verified|allowed)",
        codes=(553, 550, 554),
        reason="no_relaying",
        signal=AccountSignal.AUTH_FAILED,
        permanent=False,
    ),
    ReplyRule(
        r"authentication failed|invalid (?:user ?name|password)|application-specific password",
        codes=(535, 530, 534),
        reason="security_error",
        signal=AccountSignal.AUTH_FAILED,
    ),
    ReplyRule(
        r"daily (?:sending )?limit|sending limit|quota",
        codes=(550, 554, 452, 451),
        reason="rate_limited",
        signal=AccountSignal.QUOTA_EXHAUSTED,
    ),
    ReplyRule(
        r"rate limit|too many|try again later|throttl",
        codes=(421, 451, 450),
        reason="rate_limited",
        signal=AccountSignal.THROTTLED,
    ),
    ReplyRule(r"mailbox unavailable|no such user|invalid recipient|user unknown", codes=(550, 553), reason="user_unknown"),
)


def classify_reply(reply: SendReply) -> Verdict | None:
    return match_rules(REPLY_RULES, reply)
