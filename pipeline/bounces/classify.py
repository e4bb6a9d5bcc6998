"""Turn a finding into a classified recipient: status, reply code, reason, hard or soft."""

from __future__ import annotations

from pipeline.bounces.codes import find_command, find_reply_code, find_status, prefer_status, status_class
from pipeline.bounces.families import Family
from pipeline.bounces.findings import Finding
from pipeline.bounces.reason_patterns import normalise
from pipeline.bounces.reasons import decide_reason
from pipeline.bounces.remote_codes import provider_reason
from pipeline.bounces.report import BouncedRecipient, BounceKind
from pipeline.models import is_hard_bounce

MAX_REPLY_CHARS = 1000
MAX_TEXT_CHARS = 20_000
_UNDECIDED = ("on_hold", "undefined")


def classify(finding: Finding, family: Family | None) -> BouncedRecipient:
    own = finding.diagnostic[:MAX_TEXT_CHARS]
    context = finding.context[:MAX_TEXT_CHARS]
    wide = f"{own} {context}".strip()
    reply = find_reply_code(own) or (find_reply_code(context) if not own else None)
    klass = str(reply)[0] if reply else None
    in_text = find_status(own, klass) or (find_status(context, klass) if context else None)
    status = prefer_status(finding.status, in_text, reply)
    command = finding.command or find_command(own) or find_command(context)
    hint = finding.hint or (family.reason_for(normalise(own)) if family and own else None) or provider_reason(own)
    reason = decide_reason(status=status, reply=reply, diagnostic=own, command=command, action=finding.action, hint=hint)
    if reason in _UNDECIDED and context:
        wide_hint = hint or (family.reason_for(normalise(wide)) if family else None)
        reason = decide_reason(
            status=status, reply=reply, diagnostic=wide, command=command, action=finding.action, hint=wide_hint
        )
    if reason == "on_hold" and not own.strip():
        reason = "undefined"  # nothing the recipient's MTA said was left undecided (Sisimai's rule)
    code = status_class(status, reply) or (400 if finding.action == "delayed" else 500)
    permanent = code >= 500 and finding.action != "delayed"  # a 4xx or a delay never proves an address dead
    kind = BounceKind.HARD if permanent and is_hard_bounce(reason, code) else BounceKind.SOFT
    if reason == "delivered":
        kind = BounceKind.NOT_BOUNCE
    return BouncedRecipient(
        address=finding.address,
        kind=kind,
        reason=reason,
        status=status,
        smtp_reply=_one_line(finding.smtp_reply or own) or None,
        reply_code=reply,
        action=finding.action,
        remote_mta=finding.remote_mta,
        command=command,
    )


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())[:MAX_REPLY_CHARS]
