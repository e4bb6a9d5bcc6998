"""Mails that look like bounces but are not: auto-replies (RFC 3834) and ARF complaints (RFC 5965);
plus the generic subject/sender evidence that a mail is a bounce at all."""

from __future__ import annotations

import re

from pipeline.bounces.addresses import first_address
from pipeline.bounces.dsn import parse_delivery_status
from pipeline.bounces.mime import MailView, load_message

AUTO_SUBJECT = re.compile(
    r"^(?:re:\s*)?(?:\[?auto(?:matic|matische|matisch)?[- ]?(?:reply|response|respond|antwort|antwoord|svar|risposta|"
    r"respuesta|resposta)\]?|autoreply|auto-reply|out of (?:the )?office|ooo\b|abwesenheit|abwesenheitsnotiz|"
    r"ausser haus|au[sß]er haus|r.ponse automatique|absence|absent|fuori sede|afwezig|fr.nvaro|poza biurem|"
    r"on vacation|vacation|urlaub|away from|i am away|ich bin|自動応答|自动回复|автоответ|out-of-office)",
    re.I,
)
AUTO_SUBJECT_ANYWHERE = re.compile(
    r"\b(?:out of (?:the )?office|automatic reply|auto(?:matic)?[- ]?reply|auto[- ]?response|abwesenheitsnotiz|"
    r"automatische antwort|r.ponse automatique|respuesta autom.tica|risposta automatica|automatisch antwoord|"
    r"resposta autom.tica|on vacation|vacation reply)\b",
    re.I,
)
AUTO_BODY = re.compile(
    r"\b(?:i am (?:currently )?(?:away|out of (?:the )?office|on (?:vacation|holiday|leave))|i'm (?:currently )?"
    r"(?:away|out of (?:the )?office|on (?:vacation|holiday|leave))|i will be (?:out of (?:the )?office|away|back)|"
    r"will be back (?:on|in)|limited access to (?:my )?e-?mail|ich bin (?:bis|vom|derzeit|zur zeit|nicht)|"
    r"je suis absent|thank you for your (?:e-?mail|message)[^.]{0,60}(?:away|out of)|"
    r"i will be traveling for work)\b",
    re.I,
)
BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|non[- ]?deliver|delivery (?:status notification|failure|failed|has failed|problem|"
    r"report|notification|error|incomplete)|failure notice|returned mail|mail delivery (?:failed|failure|system|"
    r"subsystem|error|problem)|could ?n[o']t be delivered|not delivered|delivery_failure|delayed mail|"
    r"warning: could not send|mail could not be delivered|message (?:not delivered|delivery failure|delivery has failed)|"
    r"permanent delivery failure|unzustellbar|nicht zustellbar|non remis|non recapitabile|onbestelbaar|"
    r"no entregado|no se pudo entregar|unable to deliver|mail system error|returned to sender|bounced mail|"
    r"notice: mail delivery status|message delivery failure|delivery notification|mail failure|"
    r"配信できません|配送できません|配信エラー|配信に失敗|送信できませんでした|届きませんでした|"
    r"недоставленное сообщение|не доставлено|mensagem n.o entregue|n.o foi poss.vel entregar|impossibile consegnare",
    re.I,
)
DAEMON_SENDER = re.compile(
    r"mailer[- ]?daemon|postmaster|mail delivery (?:system|subsystem|service)|mail administrator|"
    r"microsoftexchange[0-9a-f]{20,}@|mail ?system|courier mail server|internet mail delivery",
    re.I,
)
_FEEDBACK_BODY = re.compile(r"^Feedback-Type:\s*\S+", re.I | re.M)


def bounce_evidence(view: MailView) -> int:
    """0-2: does the envelope (subject, sender) say "bounce"?"""
    score = 0
    if BOUNCE_SUBJECT.search(view.subject):
        score += 1
    if DAEMON_SENDER.search(view.sender):
        score += 1
    return score


def is_autoreply(view: MailView) -> bool:
    headers = {k: " ".join(v).lower() for k, v in view.headers.items()}
    subject = view.subject
    if any(k in headers for k in ("x-autoreply", "x-autorespond", "x-autoresponder", "x-autoreply-from", "x-mail-autoreply")):
        return True
    if "auto_reply" in headers.get("precedence", "") or "x-vacation" in headers:
        return True
    if AUTO_SUBJECT.search(subject) or AUTO_SUBJECT_ANYWHERE.search(subject):
        return True
    auto_submitted = headers.get("auto-submitted", "")
    return "auto-replied" in auto_submitted and bool(AUTO_BODY.search(view.body_text[:4000]))


def autoreply_address(view: MailView) -> str | None:
    return first_address(view.header("from")) or first_address(view.header("reply-to"))


def is_feedback(view: MailView) -> bool:
    ctype = view.header("content-type").lower()
    if "feedback-report" in ctype or view.feedback_texts:
        return True
    if view.header("x-hmxmroriginalrecipient"):
        return True
    return bool(_FEEDBACK_BODY.search(view.body_text)) and "abuse" in view.subject.lower()


def feedback_addresses(view: MailView) -> list[str]:
    found: list[str] = []
    for text in [*view.feedback_texts, view.body_text]:
        fields = parse_delivery_status(text).per_message
        for name in ("original-rcpt-to", "removal-recipient"):
            address = first_address(fields.get(name, ""))
            if address and address not in found:
                found.append(address)
    hotmail = first_address(view.header("x-hmxmroriginalrecipient"))
    if hotmail and hotmail not in found:
        found.append(hotmail)
    if not found:
        for original in view.originals:
            address = first_address(str(original.get("to", "")))
            if address:
                found.append(address)
        for text in view.original_header_texts:
            address = first_address(str(load_message(text).get("to", "")))
            if address and address not in found:
                found.append(address)
    return found
