"""Amazon SES: DSNs from amazonses.com and SNS bounce/complaint/delivery notifications (JSON)."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from pipeline.bounces.addresses import first_address
from pipeline.bounces.families.base import Family, Marker
from pipeline.bounces.findings import Finding

if TYPE_CHECKING:
    from pipeline.bounces.mime import MailView

_JSON_START = re.compile(r"\{\s*\"(?:notificationType|eventType|Type|Message)\"")
_BOUNCE_TYPES: dict[str, str | None] = {"permanent": None, "transient": None, "undetermined": "on_hold"}
# bounceSubType → reason when the recipient entry carries no diagnostic code
_SUBTYPES: dict[str, str] = {
    "noemail": "user_unknown",
    "suppressed": "filtered",
    "onaccountsuppressionlist": "filtered",
    "mailboxfull": "mailbox_full",
    "messagetoolarge": "mesg_too_big",
    "contentrejected": "spam_detected",
    "attachmentrejected": "policy_violation",
}


def load_notification(text: str) -> dict[str, Any] | None:
    """The SES event object from an SNS envelope or a raw notification body."""
    match = _JSON_START.search(text or "")
    if not match:
        return None
    decoder = json.JSONDecoder()
    try:
        data, _ = decoder.raw_decode(text[match.start() :])
    except ValueError:
        return None
    if isinstance(data, dict) and isinstance(data.get("Message"), str):
        try:
            inner = json.loads(data["Message"])
        except ValueError:
            return None
        data = inner if isinstance(inner, dict) else data
    return data if isinstance(data, dict) else None


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def kind_of(data: dict[str, Any]) -> str:
    return str(data.get("notificationType") or data.get("eventType") or "").lower()


def message_id(data: dict[str, Any]) -> str | None:
    mail = _dict(data.get("mail"))
    common = _dict(mail.get("commonHeaders"))
    for header in mail.get("headers") or []:
        if isinstance(header, dict) and str(header.get("name", "")).lower() == "message-id":
            return str(header.get("value"))
    value = common.get("messageId") or None
    return str(value) if value else None


def findings_from_json(data: dict[str, Any]) -> list[Finding]:
    kind = kind_of(data)
    if kind == "bounce":
        return _bounce(_dict(data.get("bounce")))
    section = _dict(data.get(kind))
    if kind == "complaint":
        entries = section.get("complainedRecipients") or []
        return [_simple(e, "feedback") for e in entries if isinstance(e, dict)]
    if kind == "delivery":
        return [
            Finding(
                address=a,
                action="delivered",
                hint="delivered",
                source="json",
                smtp_reply=section.get("smtpResponse"),
                diagnostic=str(section.get("smtpResponse") or ""),
            )
            for a in (first_address(str(r)) for r in section.get("recipients") or [])
            if a
        ]
    return []


def _simple(entry: dict[str, Any], hint: str) -> Finding:
    return Finding(address=first_address(str(entry.get("emailAddress", ""))) or "", hint=hint, source="json")


def _bounce(bounce: dict[str, Any]) -> list[Finding]:
    subtype = str(bounce.get("bounceSubType") or "").lower()
    bounce_type = str(bounce.get("bounceType") or "").lower()
    findings = []
    for entry in bounce.get("bouncedRecipients") or []:
        if not isinstance(entry, dict):
            continue
        address = first_address(str(entry.get("emailAddress", "")))
        if not address:
            continue
        diagnostic = str(entry.get("diagnosticCode") or "")
        diagnostic = diagnostic.split(";", 1)[1].strip() if diagnostic.lower().startswith("smtp;") else diagnostic
        status = entry.get("status")
        findings.append(
            Finding(
                address=address,
                diagnostic=diagnostic,
                status=str(status) if status else None,
                action=str(entry.get("action") or ("failed" if bounce_type == "permanent" else "delayed")),
                remote_mta=str(bounce.get("remoteMtaIp") or "") or None,
                hint=None if diagnostic or status else (_SUBTYPES.get(subtype) or _BOUNCE_TYPES.get(bounce_type)),
                smtp_reply=diagnostic or None,
                source="json",
            )
        )
    return findings


def custom(view: MailView) -> list[Finding]:
    data = load_notification(view.body_text)
    return findings_from_json(data) if data else []


SES = Family(
    name="amazonses",
    markers=(
        Marker("from", r"@(?:[\w.-]+\.)?amazonses\.com|no-reply@sns\.amazonaws\.com", 2),
        Marker("x-aws-outgoing", r".", 1),
        Marker("x-ses-outgoing", r".", 1),
        Marker("subject", r"^aws notification message", 2),
        Marker("body", r"\"notificationType\"\s*:\s*\"(?:bounce|complaint|delivery)\"|\"eventType\"\s*:\s*\"bounce\"", 3),
        Marker("body", r"^reporting-mta:\s*dns;\s*[\w.-]*amazonses\.com", 1),
        Marker("body", r"^an error occurred while trying to deliver the mail to the following recipients", 1),
    ),
    begin=(r"^an error occurred while trying to deliver the mail",),
    custom=custom,
)
