"""SendGrid SMTP relay replies (smtp.sendgrid.net)."""

from __future__ import annotations

from pipeline.feedback.replies import ReplyRule, match_rules
from pipeline.models import AccountSignal, SendReply, Verdict

REPLY_RULES: tuple[ReplyRule, ...] = (
    ReplyRule(
        r"maximum credits exceeded|credits? exceeded|email limit reached|daily limit",
        codes=(550, 451, 452),
        reason="rate_limited",
        signal=AccountSignal.QUOTA_EXHAUSTED,
    ),
    ReplyRule(
        r"authentication failed|bad username ?/ ?password|the provided authorization grant is invalid|"
        r"permission denied|api key",
        codes=(535, 530, 550),
        reason="security_error",
        signal=AccountSignal.AUTH_FAILED,
    ),
    ReplyRule(
        r"the from address does not match a verified sender identity|sender identity",
        codes=(550,),
        reason="rejected",
        signal=AccountSignal.AUTH_FAILED,
        permanent=False,
    ),
    ReplyRule(
        r"too many connections|connection limit|rate limit",
        codes=(421, 451),
        reason="rate_limited",
        signal=AccountSignal.THROTTLED,
    ),
    ReplyRule(r"bounced address|previously bounced", codes=(550,), reason="filtered"),
    ReplyRule(r"spam reporting address|unsubscribed address|invalid address|blocked", codes=(550,), reason="filtered"),
)


def classify_reply(reply: SendReply) -> Verdict | None:
    return match_rules(REPLY_RULES, reply)
