"""Microsoft 365 / Exchange Online / Outlook.com SMTP replies."""

from __future__ import annotations

from pipeline.feedback.replies import ReplyRule, match_rules
from pipeline.models import AccountSignal, SendReply, Verdict

REPLY_RULES: tuple[ReplyRule, ...] = (
    # Basic authentication turned off for SMTP AUTH (Exchange Online, end of 2026 by default): only OAuth helps.
    ReplyRule(
        # 5.7.139 also says "SmtpClientAuthentication is disabled" (SMTP AUTH off): an admin switch, not OAuth.
        r"(?is)^(?!.*smtpclientauthentication).*(?:5\.7\.139|5\.7\.30\b|basic authentication is (?:disabled|not supported))",
        codes=(535, 550),
        reason="basic_auth_disabled",
        signal=AccountSignal.AUTH_FAILED,
    ),
    ReplyRule(
        r"smtpclientauthentication is disabled|5\.7\.139|authentication unsuccessful|5\.7\.3 .{0,40}auth|"
        r"client not authenticated|5\.7\.57",
        codes=(535, 550, 530, 554, 504),
        reason="security_error",
        signal=AccountSignal.AUTH_FAILED,
    ),
    ReplyRule(
        r"sending quota|daily (?:recipient|message) (?:limit|rate)|recipientratelimitexceeded|"
        r"messagerateLimitExceeded|exceeded .{0,30}recipient rate limit|5\.2\.0 .{0,40}submissionquotaexceeded|"
        r"5\.7\.708 .{0,10}quota",
        codes=(554, 550, 452, 421, 432),
        reason="rate_limited",
        signal=AccountSignal.QUOTA_EXHAUSTED,
    ),
    ReplyRule(
        r"storedrv\.submission\.exception:sendasdenied|sendasdeniedexception|not allowed to send as",
        codes=(554, 550),
        reason="rejected",
    ),
    ReplyRule(
        r"traffic not accepted from this ip|5\.7\.708|5\.7\.750|5\.7\.606|banned sending ip|"
        r"part of their network is on our block list|\bs3150\b|\bs3140\b",
        codes=(550, 554, 451),
        reason="blocked",
    ),
    ReplyRule(
        r"too many connections|4\.3\.2 .{0,20}concurrent|server busy",
        codes=(421, 432, 451),
        reason="too_many_conn",
        signal=AccountSignal.THROTTLED,
    ),
    ReplyRule(
        r"temporarily rate limited|rate limit|4\.7\.500|4\.7\.650",
        codes=(421, 451, 452),
        reason="rate_limited",
        signal=AccountSignal.THROTTLED,
    ),
    ReplyRule(
        r"resolver\.adr\.recipnotfound|recipient not found by smtp address lookup|requested action not taken: "
        r"mailbox unavailable",
        codes=(550,),
        reason="user_unknown",
    ),
    ReplyRule(r"5\.7\.509|5\.7\.510|5\.7\.515|dmarc|spf", codes=(550,), reason="auth_failure"),
    ReplyRule(r"mailbox ?full|quotaexceeded", codes=(550, 552, 554), reason="mailbox_full"),
)


def classify_reply(reply: SendReply) -> Verdict | None:
    return match_rules(REPLY_RULES, reply)
