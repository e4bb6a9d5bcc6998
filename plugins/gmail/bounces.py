"""Gmail / Google Workspace SMTP replies (smtp.gmail.com and Google's MX)."""

from __future__ import annotations

from pipeline.feedback.replies import ReplyRule, match_rules
from pipeline.models import AccountSignal, SendReply, Verdict

REPLY_RULES: tuple[ReplyRule, ...] = (
    ReplyRule(
        r"daily user sending limit exceeded|sending limits? exceeded|user has exceeded .{0,20}sending",
        codes=(550, 421, 454, 452),
        reason="rate_limited",
        signal=AccountSignal.QUOTA_EXHAUSTED,
    ),
    ReplyRule(
        r"too many login attempts|username and password not accepted|application-specific password required|"
        r"please log in (?:with|via) your web browser|invalid credentials",
        codes=(454, 534, 535),
        reason="security_error",
        signal=AccountSignal.AUTH_FAILED,
    ),
    ReplyRule(
        r"unusual rate of unsolicited mail|temporarily rate limited|4\.7\.28|rate limit",
        codes=(421, 450, 451, "4.7."),
        reason="rate_limited",
        signal=AccountSignal.THROTTLED,
        retry_after=3600.0,
    ),
    ReplyRule(
        r"try again later|temporary system problem", codes=(421, 451, 454), reason="rate_limited", signal=AccountSignal.THROTTLED
    ),
    ReplyRule(
        r"unauthenticated|does not have an spf|dkim|dmarc|5\.7\.2[0-7]", codes=(550, 421, "5.7.", "4.7."), reason="auth_failure"
    ),
    ReplyRule(r"the email account that you tried to reach does not exist|nosuchuser", codes=(550,), reason="user_unknown"),
    ReplyRule(r"the email account that you tried to reach is (?:disabled|inactive)", codes=(550,), reason="suspend"),
    ReplyRule(
        r"(?:inbox|mailbox) is out of storage space|over quota|recipient inbox full", codes=(452, 552, 550), reason="mailbox_full"
    ),
    ReplyRule(r"likely unsolicited mail|spam|blocked for spam", codes=(550, 421, "5.7.1"), reason="spam_detected"),
    ReplyRule(r"message exceeded .{0,30} size limits|message too large", codes=(552,), reason="mesg_too_big"),
    ReplyRule(r"ptr record|reverse dns", codes=(550, 421), reason="require_ptr"),
    ReplyRule(r"not rfc 5322 compliant|rfcmessagenoncompliant", codes=(550,), reason="not_compliant_rfc"),
)


def classify_reply(reply: SendReply) -> Verdict | None:
    return match_rules(REPLY_RULES, reply)
