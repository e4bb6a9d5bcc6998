"""Amazon SES SMTP interface replies: throttling, sending quota, verification and suppression."""

from __future__ import annotations

from pipeline.feedback.replies import ReplyRule, match_rules
from pipeline.models import AccountSignal, RecipientEvent, SendReply, Verdict

REPLY_RULES: tuple[ReplyRule, ...] = (
    ReplyRule(
        r"throttling failure: daily message quota exceeded",
        codes=(454,),
        reason="rate_limited",
        signal=AccountSignal.QUOTA_EXHAUSTED,
    ),
    ReplyRule(
        r"throttling failure: maximum sending rate exceeded",
        codes=(454,),
        reason="rate_limited",
        signal=AccountSignal.THROTTLED,
        retry_after=1.0,
    ),
    ReplyRule(r"throttling failure", codes=(454,), reason="rate_limited", signal=AccountSignal.THROTTLED),
    ReplyRule(
        r"message rejected: email address is not verified|message rejected: sending paused|"
        r"account is not authorized|sending is paused",
        codes=(554, 550),
        reason="rejected",
        signal=AccountSignal.AUTH_FAILED,
        event=RecipientEvent.DEFERRED,
        permanent=False,
    ),
    ReplyRule(
        r"authentication credentials invalid|invalid credentials|must issue a starttls",
        codes=(535, 530),
        reason="security_error",
        signal=AccountSignal.AUTH_FAILED,
    ),
    ReplyRule(
        r"address (?:is )?(?:on|blacklisted|in) .{0,30}suppression list|address blacklisted", codes=(554, 550), reason="filtered"
    ),
    ReplyRule(
        r"message length is more than|maximum message size|transaction failed: message too large",
        codes=(552, 554),
        reason="mesg_too_big",
    ),
    ReplyRule(r"temporary service failure|service unavailable", codes=(451, 454, 421), reason="system_error"),
)


def classify_reply(reply: SendReply) -> Verdict | None:
    return match_rules(REPLY_RULES, reply)
