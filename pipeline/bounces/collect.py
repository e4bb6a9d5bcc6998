"""Gather per-recipient findings from every source a bounce offers: DSN parts, DSN-like
blocks in plain text, the human-readable report, X-Failed-Recipients, provider JSON."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pipeline.bounces.addresses import find_addresses, first_address
from pipeline.bounces.dsn import DSN_HINT_RE, DeliveryStatus, parse_delivery_status
from pipeline.bounces.families import Family
from pipeline.bounces.findings import Finding
from pipeline.bounces.mime import MailView
from pipeline.bounces.textscan import ScanResult, cut_original, scan

DELIVERED_ACTIONS = frozenset({"delivered", "relayed", "expanded"})
# PowerMTA's X-PowerMTA-BounceCategory → reason
POWERMTA_CATEGORIES: dict[str, str] = {
    "bad-mailbox": "user_unknown",
    "bad-domain": "host_unknown",
    "inactive-mailbox": "suspend",
    "quota-issues": "mailbox_full",
    "spam-related": "spam_detected",
    "policy-related": "policy_violation",
    "message-expired": "expired",
    "no-answer-from-host": "network_error",
    "relaying-issues": "no_relaying",
    "routing-errors": "system_error",
    "bad-connection": "network_error",
    "content-related": "content_error",
    "invalid-sender": "rejected",
    "protocol-errors": "syntax_error",
    "virus-related": "virus_detected",
    "bad-configuration": "system_error",
}
_REPORTING = re.compile(r"^(?:Reporting-MTA|Final-Recipient|Original-Recipient)\s*:", re.I | re.M)


@dataclass
class Collected:
    failed: list[Finding] = field(default_factory=list)
    delivered: list[Finding] = field(default_factory=list)
    scan: ScanResult | None = None
    from_dsn: bool = False


_OUR_HEADERS = ("from", "to", "cc", "reply-to", "return-path", "sender", "delivered-to", "x-original-to", "envelope-to")


def excluded_addresses(view: MailView, family: Family | None = None) -> set[str]:
    names = [n for n in _OUR_HEADERS if not family or n not in family.recipient_headers]
    found = {a.lower() for n in names for v in view.header_all(n) for a in find_addresses(v)}
    for original in view.originals[:1]:
        found.update(a.lower() for a in find_addresses(str(original.get("from", ""))))
        found.update(a.lower() for a in find_addresses(str(original.get("sender", ""))))
    return found


def delivery_statuses(view: MailView) -> list[DeliveryStatus]:
    reports = [parse_delivery_status(t) for t in view.dsn_texts]
    if any(r.recipients for r in reports):
        return reports
    for text in view.texts:
        region = cut_original(text, None)
        if DSN_HINT_RE.search(region):
            start = _REPORTING.search(region)
            reports.append(parse_delivery_status(region[start.start() :] if start else region))
    return reports


def _from_dsn(reports: list[DeliveryStatus]) -> tuple[list[Finding], list[Finding]]:
    failed: list[Finding] = []
    delivered: list[Finding] = []
    seen: set[str] = set()
    for report in reports:
        for r in report.recipients:
            key = r.address.lower()
            if key in seen:
                continue
            seen.add(key)
            action = (r.action or "").lower() or None
            category = r.fields.get("x-powermta-bouncecategory", "").strip().lower()
            finding = Finding(
                address=r.address,
                diagnostic=r.diagnostic,
                status=r.status,
                action=action,
                remote_mta=r.remote_mta,
                hint=POWERMTA_CATEGORIES.get(category),
                smtp_reply=r.diagnostic or None,
                source="dsn",
            )
            if r.diagnostic_type and r.diagnostic_type.startswith("X-UNIX") and not finding.hint:
                finding.hint = "mailer_error"
            is_delivered = action in DELIVERED_ACTIONS or (r.status or "").startswith("2.")
            (delivered if is_delivered else failed).append(finding)
    return failed, delivered


def collect(view: MailView, family: Family | None) -> Collected:
    result = Collected()
    if family and family.custom:
        custom = [f for f in family.custom(view) if f.address]
        result.failed = [f for f in custom if f.action not in DELIVERED_ACTIONS]
        result.delivered = [f for f in custom if f.action in DELIVERED_ACTIONS]
        if custom:
            return result
    failed, delivered = _from_dsn(delivery_statuses(view))
    result.failed, result.delivered, result.from_dsn = failed, delivered, bool(failed or delivered)
    result.scan = scan(view.body_text, family, excluded_addresses(view, family))
    if failed:
        _enrich(failed, result.scan)
        return result
    if delivered:
        return result
    result.failed = _with_header(view, result.scan)
    return result


def _enrich(failed: list[Finding], scanned: ScanResult) -> None:
    """Give DSN recipients the human-readable lines the report wrote about them."""
    by_address = {f.address.lower(): f for f in scanned.findings}
    for finding in failed:
        text = by_address.get(finding.address.lower())
        if text and text.diagnostic:
            if finding.diagnostic:
                finding.context = text.diagnostic
            else:
                finding.diagnostic = text.diagnostic
        if len(failed) == 1:
            finding.context = f"{finding.context} {scanned.region}".strip()


def _with_header(view: MailView, scanned: ScanResult) -> list[Finding]:
    listed = [a for v in view.header_all("x-failed-recipients") for a in find_addresses(v)]
    findings = scanned.findings
    if listed:
        by_address = {f.address.lower(): f for f in findings}
        findings = [by_address.get(a.lower()) or Finding(address=a, source="header") for a in dict.fromkeys(listed)]
    single = len(findings) == 1
    for finding in findings:
        if single or not finding.diagnostic:
            finding.context = scanned.region
    return findings


def original_recipient(view: MailView) -> Finding | None:
    """Last resort: the returned original had exactly one recipient."""
    for original in view.originals[:1]:
        to = [a for a in find_addresses(str(original.get("to", "")))]
        if len(to) == 1:
            return Finding(address=to[0], source="original")
    for text in view.original_header_texts[:1]:
        match = re.search(r"^To:\s*(.+)$", text, re.I | re.M)
        address = first_address(match.group(1)) if match else None
        if address:
            return Finding(address=address, source="original")
    return None
