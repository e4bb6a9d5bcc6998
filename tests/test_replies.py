"""Live SMTP replies and transport errors → Verdict (core table and provider tables)."""

from __future__ import annotations

import importlib

import pytest

from pipeline.feedback.replies import ReplyRule, classify_reply, match_rules, parse_retry_after
from pipeline.models import AccountSignal as S
from pipeline.models import RecipientEvent as E
from pipeline.models import SendReply, TransportError, Verdict

PROVIDERS = ("ses", "gmail", "outlook", "yahoo", "sendgrid", "mailgun", "postmark", "zoho")


def classify(provider: str | None, reply: SendReply) -> Verdict:
    """Provider rules first, the RFC 3463/5321 core as the fallback (the hook order)."""
    if provider:
        verdict = importlib.import_module(f"plugins.{provider}.bounces").classify_reply(reply)
        if verdict is not None:
            return verdict
    return classify_reply(reply)


# provider, code, text, event, permanent, reason, account signal
CASES = [
    (None, 250, "2.0.0 OK 1700000000 queued", E.SENT, False, "delivered", S.OK),
    (None, 250, "Ok: queued as 4F1B2C3D", E.SENT, False, "delivered", S.OK),
    (
        None,
        550,
        "5.1.1 <nobody@example.org>: Recipient address rejected: User unknown in virtual mailbox table",
        E.BOUNCED,
        True,
        "user_unknown",
        S.OK,
    ),
    (
        None,
        550,
        "5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
        E.BOUNCED,
        True,
        "user_unknown",
        S.OK,
    ),
    (None, 550, "5.1.2 Host unknown (Name server: example.invalid: host not found)", E.BOUNCED, True, "host_unknown", S.OK),
    (None, 550, "5.1.6 Recipient addresses in this domain have moved", E.BOUNCED, True, "has_moved", S.OK),
    (None, 552, "5.2.2 Mailbox full", E.BOUNCED, True, "mailbox_full", S.OK),
    (None, 452, "4.2.2 The email account that you tried to reach is over quota", E.DEFERRED, False, "mailbox_full", S.OK),
    (None, 552, "5.3.4 Message size exceeds fixed maximum message size", E.BOUNCED, True, "mesg_too_big", S.OK),
    (None, 552, "Message size exceeds fixed limit", E.BOUNCED, True, "mesg_too_big", S.OK),
    (
        None,
        554,
        "5.7.1 Service unavailable; Client host [192.0.2.9] blocked using zen.spamhaus.org",
        E.BOUNCED,
        True,
        "blocked",
        S.OK,
    ),
    (
        None,
        550,
        "5.7.1 Our system has detected that this message is likely unsolicited mail (SPAM)",
        E.BOUNCED,
        True,
        "spam_detected",
        S.OK,
    ),
    (
        None,
        550,
        "5.7.26 This mail has been blocked because the sender is unauthenticated (DMARC policy)",
        E.BOUNCED,
        True,
        "auth_failure",
        S.OK,
    ),
    (None, 550, "5.7.23 SPF validation failed", E.BOUNCED, True, "auth_failure", S.OK),
    (None, 554, "5.7.1 <a@b.example>: Relay access denied", E.BOUNCED, True, "no_relaying", S.OK),
    (None, 550, "5.2.1 The email account that you tried to reach is disabled", E.BOUNCED, True, "suspend", S.OK),
    (None, 450, "4.7.1 Client host rejected: cannot find your reverse hostname", E.DEFERRED, False, "require_ptr", S.OK),
    (None, 451, "4.3.0 Temporary local problem - please try later", E.DEFERRED, False, "system_error", S.OK),
    (None, 421, "4.7.0 Try again later, closing connection", E.DEFERRED, False, "rate_limited", S.THROTTLED),
    (
        None,
        421,
        "Too many concurrent SMTP connections from this IP address; please try again later",
        E.DEFERRED,
        False,
        "too_many_conn",
        S.THROTTLED,
    ),
    (None, 454, "Throttling failure: Maximum sending rate exceeded", E.DEFERRED, False, "rate_limited", S.THROTTLED),
    (None, 535, "5.7.8 Authentication credentials invalid", E.DEFERRED, False, "security_error", S.AUTH_FAILED),
    (None, 530, "5.7.0 Authentication required", E.DEFERRED, False, "security_error", S.AUTH_FAILED),
    (None, 550, "5.4.5 Daily user sending limit exceeded", E.DEFERRED, False, "rate_limited", S.QUOTA_EXHAUSTED),
    (None, 521, "5.3.2 mail.example.org does not accept mail (nullmx)", E.BOUNCED, True, "not_accept", S.OK),
    (None, 500, "5.5.2 Syntax error, command unrecognized", E.BOUNCED, True, "syntax_error", S.OK),
    (None, 551, "User not local; please try <someone@example.net>", E.BOUNCED, True, "has_moved", S.OK),
    (None, 550, "Requested action not taken: mailbox unavailable", E.BOUNCED, True, "user_unknown", S.OK),
    (None, 553, "5.1.8 <sender@example.com>: Sender address rejected: Domain not found", E.BOUNCED, True, "rejected", S.OK),
    (None, 554, "Transaction failed", E.BOUNCED, True, "system_error", S.OK),
    ("ses", 454, "Throttling failure: Maximum sending rate exceeded.", E.DEFERRED, False, "rate_limited", S.THROTTLED),
    ("ses", 454, "Throttling failure: Daily message quota exceeded.", E.DEFERRED, False, "rate_limited", S.QUOTA_EXHAUSTED),
    (
        "ses",
        554,
        "Message rejected: Email address is not verified. The following identities failed the check "
        "in region US-EAST-1: hello@acme.example",
        E.DEFERRED,
        False,
        "rejected",
        S.AUTH_FAILED,
    ),
    ("ses", 535, "Authentication Credentials Invalid", E.DEFERRED, False, "security_error", S.AUTH_FAILED),
    (
        "gmail",
        421,
        "4.7.0 [192.0.2.1] Our system has detected an unusual rate of unsolicited mail originating "
        "from your IP address. To protect our users from spam, mail sent from your IP address has been "
        "temporarily rate limited.",
        E.DEFERRED,
        False,
        "rate_limited",
        S.THROTTLED,
    ),
    (
        "gmail",
        421,
        "4.7.28 [192.0.2.1] Gmail has detected an unusual rate of mail originating from your DKIM domain",
        E.DEFERRED,
        False,
        "rate_limited",
        S.THROTTLED,
    ),
    (
        "gmail",
        550,
        "5.7.26 This mail is unauthenticated, which poses a security risk to the sender and Gmail users, and has been blocked.",
        E.BOUNCED,
        True,
        "auth_failure",
        S.OK,
    ),
    (
        "gmail",
        550,
        "5.1.1 The email account that you tried to reach does not exist. Please try double-checking "
        "the recipient's email address for typos",
        E.BOUNCED,
        True,
        "user_unknown",
        S.OK,
    ),
    ("gmail", 454, "4.7.0 Too many login attempts, please try again later.", E.DEFERRED, False, "security_error", S.AUTH_FAILED),
    (
        "gmail",
        535,
        "5.7.8 Username and Password not accepted. For more information, go to https://support.google.com/mail/?p=BadCredentials",
        E.DEFERRED,
        False,
        "security_error",
        S.AUTH_FAILED,
    ),
    ("gmail", 550, "5.4.5 Daily user sending limit exceeded.", E.DEFERRED, False, "rate_limited", S.QUOTA_EXHAUSTED),
    ("gmail", 452, "4.2.2 The email account that you tried to reach is over quota.", E.DEFERRED, False, "mailbox_full", S.OK),
    (
        "outlook",
        550,
        "5.7.708 Service unavailable. Access denied, traffic not accepted from this IP.",
        E.BOUNCED,
        True,
        "blocked",
        S.OK,
    ),
    (
        "outlook",
        535,
        "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.",
        E.DEFERRED,
        False,
        "security_error",
        S.AUTH_FAILED,
    ),
    (
        "outlook",
        550,
        "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox.",
        E.DEFERRED,
        False,
        "security_error",
        S.AUTH_FAILED,
    ),
    (
        "outlook",
        554,
        "5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; "
        "Failed to process message due to a permanent exception",
        E.BOUNCED,
        True,
        "rejected",
        S.OK,
    ),
    (
        "outlook",
        550,
        "5.5.0 Requested action not taken: mailbox unavailable (S2017062302).",
        E.BOUNCED,
        True,
        "user_unknown",
        S.OK,
    ),
    (
        "yahoo",
        421,
        "4.7.0 [TSS04] Messages from 192.0.2.7 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1",
        E.DEFERRED,
        False,
        "blocked",
        S.THROTTLED,
    ),
    (
        "yahoo",
        554,
        "delivery error: dd This user doesn't have a yahoo.com account (nobody@yahoo.com) [0] - mta1234.mail.ne1.yahoo.com",
        E.BOUNCED,
        True,
        "user_unknown",
        S.OK,
    ),
    ("yahoo", 552, "1 Requested mail action aborted, mailbox not found", E.BOUNCED, True, "user_unknown", S.OK),
    (
        "sendgrid",
        550,
        "The from address does not match a verified Sender Identity.",
        E.DEFERRED,
        False,
        "rejected",
        S.AUTH_FAILED,
    ),
    ("sendgrid", 535, "Authentication failed: Bad username / password", E.DEFERRED, False, "security_error", S.AUTH_FAILED),
    (
        "mailgun",
        421,
        "Domain example.com is not allowed to send: Free accounts are for test purposes only.",
        E.DEFERRED,
        False,
        "rejected",
        S.AUTH_FAILED,
    ),
    ("postmark", 550, "Sender signature not defined for From address", E.DEFERRED, False, "rejected", S.AUTH_FAILED),
    (
        "zoho",
        554,
        "5.1.8 Email Outgoing Blocked. Unusual sending activity detected.",
        E.DEFERRED,
        False,
        "rejected",
        S.QUOTA_EXHAUSTED,
    ),
    ("zoho", 535, "Authentication Failed", E.DEFERRED, False, "security_error", S.AUTH_FAILED),
]


@pytest.mark.parametrize(("provider", "code", "text", "event", "permanent", "reason", "signal"), CASES)
def test_live_replies_get_the_expected_verdict(provider, code, text, event, permanent, reason, signal) -> None:
    verdict = classify(provider, SendReply(account="acct", code=code, text=text))
    assert (verdict.event, verdict.permanent, verdict.reason, verdict.account_signal) == (event, permanent, reason, signal)


@pytest.mark.parametrize(
    ("error", "reason", "signal"),
    [
        (TransportError.CONNECT, "network_error", S.CONNECTION_FAILED),
        (TransportError.TLS, "failed_starttls", S.CONNECTION_FAILED),
        (TransportError.AUTH, "security_error", S.AUTH_FAILED),
        (TransportError.TIMEOUT, "network_error", S.CONNECTION_FAILED),
        (TransportError.DROPPED, "network_error", S.CONNECTION_FAILED),
        (TransportError.PROTOCOL, "system_error", S.CONNECTION_FAILED),
    ],
)
def test_transport_errors_defer_the_recipient_and_flag_the_account(error, reason, signal) -> None:
    verdict = classify_reply(SendReply(account="acct", error=error, text="boom"))
    assert verdict.event == E.DEFERRED and not verdict.permanent
    assert (verdict.reason, verdict.account_signal) == (reason, signal)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("4.7.0 Try again in 15 minutes", 900.0),
        ("Rate limit exceeded, retry after 30 seconds", 30.0),
        ("temporarily deferred, please wait 2 hours", 7200.0),
        ("try again later", None),
    ],
)
def test_retry_after_is_parsed_from_the_reply_text(text, seconds) -> None:
    assert parse_retry_after(text) == seconds


def test_throttle_verdict_carries_retry_after() -> None:
    verdict = classify_reply(SendReply(account="a", code=421, text="4.7.0 Too many messages, try again in 5 minutes"))
    assert verdict.account_signal == S.THROTTLED and verdict.retry_after == 300.0


def test_ses_rate_throttle_has_a_default_retry_after() -> None:
    verdict = classify("ses", SendReply(account="a", code=454, text="Throttling failure: Maximum sending rate exceeded."))
    assert verdict.retry_after == 1.0


def test_hard_and_soft_follow_the_reason() -> None:
    hard = classify_reply(SendReply(account="a", code=550, text="5.1.1 User unknown"))
    soft = classify_reply(SendReply(account="a", code=550, text="5.7.1 Message rejected due to IP reputation"))
    assert hard.hard and not soft.hard


def test_match_rules_checks_codes_and_enhanced_prefixes() -> None:
    rules = (ReplyRule(r"custom", codes=("5.7.",), reason="policy_violation"),)
    assert match_rules(rules, SendReply(account="a", code=550, text="5.7.9 custom text")) is not None
    assert match_rules(rules, SendReply(account="a", code=550, text="5.1.1 custom text")) is None
    assert match_rules(rules, SendReply(account="a", code=550, text="other")) is None


@pytest.mark.parametrize("provider", PROVIDERS)
def test_provider_tables_return_none_for_replies_they_do_not_know(provider: str) -> None:
    module = importlib.import_module(f"plugins.{provider}.bounces")
    assert module.REPLY_RULES
    assert module.classify_reply(SendReply(account="a", code=250, text="2.0.0 OK")) is None
