"""Email addresses as they appear in bounce texts."""

from __future__ import annotations

import re

LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\uffff](?:[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-\u0080-\uffff]{0,200})"
_LABEL = r"[A-Za-z0-9\u0080-\uffff](?:[A-Za-z0-9\-\u0080-\uffff]{0,62})"
DOMAIN = rf"(?:{_LABEL}\.)+[A-Za-z\u0080-\uffff][A-Za-z0-9\-\u0080-\uffff]{{1,62}}"
ADDR = rf"{LOCAL}@{DOMAIN}"
ADDR_RE = re.compile(rf"(?<![\w.+\-=]){ADDR}(?![\w\-])")
_QUOTED_RE = re.compile(r'"([^"@]{1,200})"@(' + DOMAIN + ")")

DAEMON_LOCALS = frozenset(
    {"mailer-daemon", "postmaster", "mail-daemon", "maildaemon", "mailerdaemon", "bounce", "bounces", "noreply", "no-reply"}
)


def find_addresses(text: str) -> list[str]:
    found = [clean(m.group(0)) for m in ADDR_RE.finditer(text or "")]
    return [a for a in found if a]


def first_address(text: str) -> str | None:
    quoted = _QUOTED_RE.search(text or "")
    if quoted:
        return clean(f'"{quoted.group(1)}"@{quoted.group(2)}')
    found = find_addresses(text)
    return found[0] if found else None


def clean(address: str) -> str:
    """Strip decorations (<>, quotes, mailto:, trailing dots) and lower-case the domain."""
    value = address.strip().strip("<>[]()'\",;:").strip()
    if value.lower().startswith("mailto:"):
        value = value[7:]
    if value.lower().startswith(("smtp:", "rfc822;")):
        value = value.split(":", 1)[-1].split(";", 1)[-1].strip()
    value = value.rstrip(".")
    if "@" not in value:
        return ""
    local, _, domain = value.rpartition("@")
    if not local or "." not in domain:
        return ""
    return f"{local}@{domain.lower()}"


def is_mailer_daemon(address: str) -> bool:
    """The bounce software itself; postmaster@ or noreply@ can still be a failed recipient."""
    local = address.split("@", 1)[0].lower()
    return local.startswith(("mailer-daemon", "mail-daemon", "maildaemon", "mailerdaemon"))


def is_daemon(address: str) -> bool:
    local = address.split("@", 1)[0].lower()
    return local in DAEMON_LOCALS or local.startswith(("mailer-daemon", "postmaster", "bounce"))
