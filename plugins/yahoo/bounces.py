"""Yahoo / AOL SMTP replies (TSS and TS codes, "dd" delivery errors)."""

from __future__ import annotations

from pipeline.feedback.replies import ReplyRule, match_rules
from pipeline.models import AccountSignal, SendReply, Verdict

REPLY_RULES: tuple[ReplyRule, ...] = (
    ReplyRule(
        r"\[tss0[1-9]\]|\[ts0[1-4]\]|temporarily deferred|messages from .{0,40} temporarily deferred",
        codes=(421, 451),
        reason="blocked",
        signal=AccountSignal.THROTTLED,
        retry_after=3600.0,
    ),
    ReplyRule(r"\[ts05\]|\[ts06\]", codes=(421, 554), reason="blocked"),
    ReplyRule(
        r"dd this user doesn't have a [\w.]+ account|this user doesn't have a|\[usr\]|user unknown",
        codes=(554, 550, 552),
        reason="user_unknown",
    ),
    ReplyRule(r"mailbox (?:is )?(?:full|over quota)|over quota", codes=(552, 452, 554), reason="mailbox_full"),
    ReplyRule(r"\[bl21\]|\[bl22\]|\[bl23\]|spamhaus|blocked", codes=(553, 554, 550), reason="blocked"),
    ReplyRule(r"not accepted for policy reasons|\[ps0\d\]", codes=(554, 550), reason="policy_violation"),
    ReplyRule(r"dmarc|spf|dkim|unauthenticated", codes=(550, 554), reason="auth_failure"),
    ReplyRule(r"too many bad recipients|too many recipients", codes=(452, 451), reason="too_many_conn"),
    ReplyRule(
        r"authentication (?:failed|required)|invalid credentials|web login required",
        codes=(535, 534, 530, 554),
        reason="security_error",
        signal=AccountSignal.AUTH_FAILED,
    ),
)


def classify_reply(reply: SendReply) -> Verdict | None:
    return match_rules(REPLY_RULES, reply)
