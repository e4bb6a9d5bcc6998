"""Find failed recipients and their error lines in a human-readable bounce text."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.bounces.addresses import ADDR, clean, find_addresses, is_daemon, is_mailer_daemon
from pipeline.bounces.families.base import Family, compiled
from pipeline.bounces.findings import Finding

# Where the returned original message begins: everything after it is the sender's mail.
COMMON_CUTS: tuple[str, ...] = (
    r"^[ \t]*-{2,}[ \t]*(?:this is a copy of (?:the|your) message|below this line is a copy of the message)",
    r"^[ \t]*-{2,}[ \t]*(?:original message|returned message|unsent message|undelivered message|message text|"
    r"forwarded message|original mail|message header|header of the original message)[^\n]*-*[ \t]*$",
    r"^[ \t]*(?:original message headers|possibly truncated original message follows|original message follows|"
    r"unsent message below|the original message (?:was|is) (?:attached|included|as follows)|"
    r"your message reads \(in part\)|message headers follow|returned message below|"
    r"a copy of the original message (?:is attached|follows|below))\b",
    r"^[ \t]*(?:en-t.tes de message d'origine|urspr.ngliche nachrichtenkopfzeilen|"
    r"original-nachricht|message d'origine|mensaje original)\s*:?\s*$",
    r"^Content-Type:[ \t]*(?:message/rfc822|text/rfc822-headers|message/partial)",
    r"^[ \t]*-{3,}[ \t]*Below is a copy of the original message",
    r"^(?:Return-Path|Received|DKIM-Signature|X-Received|ARC-Seal|Delivered-To):[^\n]*\n(?:[ \t][^\n]*\n)*"
    r"[A-Za-z][\w-]*:",
)

_NAME = r"[^<>@:\n\t]{0,60}?"
STRONG_LINES: tuple[str, ...] = (
    # exim alias:  user@example.jp <alias@example.org>: error
    rf"^\s*{ADDR}\s+<(?P<addr>{ADDR})>\s*:\s*(?P<diag>.*)$",
    # postfix / qmail / yahoo:  <user@example.jp>: host ... said: 550 ...
    rf"^\s*(?:To\s*:\s*)?<(?P<addr>{ADDR})>\s*:\s*(?P<diag>.*)$",
    # transcript:  550 5.1.1 <user@example.jp>... User unknown
    rf"^\s*(?:[<>-]{{0,4}}\s*)?(?:\d{{3}}[ -])?(?:#?\d\.\d\.\d{{1,3}}\s+)?<(?P<addr>{ADDR})>(?:\.\.\.|:)\s*(?P<diag>.+)$",
    # sendmail:  user@example.jp... User unknown
    rf"^\s*<?(?P<addr>{ADDR})>?\s*\.\.\.\s*(?P<diag>.+)$",
    # user@example.jp: error text
    rf"^\s*(?P<addr>{ADDR})\s*:\s+(?P<diag>\S.*)$",
    # Exchange 2003:  user@example.jp on 4/29/99 9:19:59 AM
    rf"^\s*(?:.{{0,40}}smtp=)?(?P<addr>{ADDR})\s+on\s+\S.*$",
    # GroupWise and others:  user@example.jp (user not found)
    rf"^\s*<?(?P<addr>{ADDR})>?\s+\((?P<diag>[^()]*[A-Za-z][^()]*)\)\s*\.?\s*$",
    # Mail2000 and others:  user@example.jp [User unknown]
    rf"^\s*<?(?P<addr>{ADDR})>?\s+\[(?P<diag>[^\[\]]*[A-Za-z]{{3}}[^\[\]]*)\]\s*\.?\s*$",
    # transcripts that echo the command:  Sent <<< RCPT TO:<user@example.jp>
    rf"^\s*(?:sent\s*)?(?:<<<|>>>)\s*rcpt to:\s*<?(?P<addr>{ADDR})>?\s*$",
    # labelled:  Recipient: [SMTP:user@example.jp]  /  Failed Recipient: user@example.jp
    rf"^\s*(?:failed |bad |invalid |unknown |original |final )?(?:recipient(?:s|\(s\))?(?: address)?|rcpt(?: to)?|"
    rf"addressee|address|e-?mail address|destinataire|empf.nger|destinatario|adresse)\s*:\s*"
    rf"\[?(?:smtp:|rfc822;\s*)?<?(?P<addr>{ADDR})>?\]?\s*(?P<diag>.*)$",
    # a line holding only an address, maybe after a display name, in <>, () or with <mailto:>
    rf"^\s*[*\-\u2022]?\s*{_NAME}\s*[\"']?[<(\[]?(?:mailto:|smtp:)?(?P<addr>{ADDR})[>)\]]?[\"']?"
    rf"(?:\s*<mailto:{ADDR}>)?\s*[:.,]?\s*$",
)
WEAK_INLINE: tuple[str, ...] = (
    rf"(?:wasn't|was not|could not be|couldn't be|cannot be|can't be|has not been|not) delivered to:?\s*[\"']?<?(?P<addr>{ADDR})",
    rf"(?:deliver(?:y|ing)?|send(?:ing)?|message|mail) to (?:the )?(?:following )?(?:recipients?|address(?:es)?)?"
    rf"[^<@\n]{{0,30}}<?(?P<addr>{ADDR})",
    rf"rcpt to:\s*<?(?P<addr>{ADDR})",
    rf"(?:recipient|user|mailbox|address|adresse|empf.nger|account)\s*[\"'<(\[]?(?P<addr>{ADDR})",
    rf"<(?P<addr>{ADDR})>",
)
_SEPARATOR = re.compile(r"^\s*(?:[-=_*]{3,}|#{3,})")
_SENDER_LINE = re.compile(
    r"^\s*(?:from|sender|reply-to|return-path|envelope-from|x-postfix-sender|x-sender|sent by|"
    r"a message sent by|the sender is|absender|exp.diteur)\b",
    re.I,
)
MAX_DIAG_LINES = 14
MAX_REGION_CHARS = 60_000  # a report is short; the rest is a returned original


@dataclass
class ScanResult:
    findings: list[Finding]
    region: str  # the report text between the start marker and the original message
    strong: bool  # recipients came from line patterns, not from loose inline mentions


def cut_original(text: str, family: Family | None) -> str:
    cuts = (family.cut if family else ()) + COMMON_CUTS
    end = len(text)
    for pattern in cuts:
        match = compiled(pattern).search(text)
        if match and 0 < match.start() < end:
            end = match.start()
    return text[:end]


def report_region(text: str, family: Family | None) -> str:
    region = cut_original(text, family)
    if family:
        for pattern in family.begin:
            match = compiled(pattern).search(region)
            if match:
                return region[match.start() :]
    return region


def scan(text: str, family: Family | None, excluded: set[str]) -> ScanResult:
    region = report_region(text[: MAX_REGION_CHARS * 4], family)[:MAX_REGION_CHARS]
    patterns = tuple(compiled(p) for p in (family.recipient_lines if family else ())) + tuple(compiled(p) for p in STRONG_LINES)
    excluded = excluded | _sender_mentions(region)
    findings = _scan_lines(region, patterns, excluded, family.diag_before if family else False)
    if findings:
        return ScanResult(findings, region, strong=True)
    return ScanResult(_scan_inline(region, excluded), region, strong=False)


def _sender_mentions(region: str) -> set[str]:
    found: set[str] = set()
    for line in region.splitlines():
        if _SENDER_LINE.match(line):
            found.update(a.lower() for a in find_addresses(line))
    return found


def _usable(address: str, excluded: set[str], listed: bool = False) -> bool:
    """`listed`: the address stands where a recipient line puts it, so postmaster@ is a recipient too."""
    if not address or address.lower() in excluded:
        return False
    return not (is_mailer_daemon(address) if listed else is_daemon(address))


def _scan_lines(region: str, patterns: tuple[re.Pattern[str], ...], excluded: set[str], before: bool) -> list[Finding]:
    by_address: dict[str, Finding] = {}
    order: list[Finding] = []
    current: Finding | None = None
    pending: list[str] = []  # lines seen since the last recipient (for diag_before)
    taken = 0
    for line in region.splitlines():
        match = next((m for m in (p.match(line) for p in patterns) if m), None)
        address = clean(match.group("addr")) if match else ""
        if match and _usable(address, excluded, listed=True):
            finding = by_address.get(address.lower())
            if finding is None:
                finding = Finding(address=address)
                by_address[address.lower()] = finding
                order.append(finding)
            diag = (match.groupdict().get("diag") or "").strip()
            if before and pending:
                finding.merge_text(" ".join(pending))
            says_more = diag or len(line.strip()) > len(address) + 4
            finding.merge_text(line.strip() if says_more else "")
            current, pending, taken = finding, [], 0
            continue
        stripped = line.strip()
        if not stripped:
            continue
        if _SEPARATOR.match(stripped):
            current = None if not before else current
            pending = []
            continue
        pending.append(stripped)
        if current is not None and not before and taken < MAX_DIAG_LINES:
            current.merge_text(stripped)
            taken += 1
    return order


def _scan_inline(region: str, excluded: set[str]) -> list[Finding]:
    for pattern in WEAK_INLINE:
        found: list[Finding] = []
        for match in compiled(pattern).finditer(region):
            address = clean(match.group("addr"))
            if _usable(address, excluded) and all(f.address.lower() != address.lower() for f in found):
                found.append(Finding(address=address))
        if found:
            return found
    return []
