"""Mailgun SMTP replies (smtp.mailgun.org / smtp.eu.mailgun.org)."""

from __future__ import annotations

from pipeline.feedback.replies import ReplyRule, match_rules
from pipeline.models import AccountSignal, SendReply, Verdict

REPLY_RULES: tuple[ReplyRule, ...] = (
    ReplyRule(
        r"domain .{0,60} is not allowed to send|free accounts are for test purposes only|"
        r"sandbox subdomains are for test purposes only|please add .{0,40} to authorized recipients",
        codes=(550, 421, 554),
        reason="rejected",
        signal=AccountSignal.AUTH_FAILED,
        permanent=False,
    ),
    ReplyRule(
        r"sending limit|quota|exceeded .{0,30}(?:limit|messages)",
        codes=(421, 450, 451, 550, 554),
        reason="rate_limited",
        signal=AccountSignal.QUOTA_EXHAUSTED,
    ),
    ReplyRule(
        r"authentication failed|invalid credentials|5\.7\.0 .{0,20}auth",
        codes=(535, 530, 534),
        reason="security_error",
        signal=AccountSignal.AUTH_FAILED,
    ),
    ReplyRule(
        r"too many (?:requests|connections)|rate limit|throttl|try again later",
        codes=(421, 450, 451),
        reason="rate_limited",
        signal=AccountSignal.THROTTLED,
    ),
    ReplyRule(r"address is on the suppression list|previously bounced|unsubscribed", codes=(550, 554), reason="filtered"),
)


def classify_reply(reply: SendReply) -> Verdict | None:
    return match_rules(REPLY_RULES, reply)
