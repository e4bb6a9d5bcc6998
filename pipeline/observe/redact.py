"""Secrets never reach a log line: a structlog processor that redacts them wherever they appear.

Three nets, cheapest first:
- keys that name a secret (`password`, `api_key`, `*_token`, `authorization`, …) lose their value;
- every secret value this process has resolved (`SecretRef.resolve()` calls `remember`), and its
  base64 form (AUTH LOGIN sends it so), is replaced inside any string, exception text included;
- patterns that carry credentials: `AUTH PLAIN <b64>`, `Bearer …`, `user:password@` in URLs,
  `password=…`, provider API key shapes (SendGrid, Mailgun, AWS access keys).
Long values are cut to a bound so an untrusted payload cannot flood a log line.
"""

from __future__ import annotations

import base64
import functools
import re
import threading
from collections.abc import Mapping, MutableMapping
from typing import Any

REDACTED = "[redacted]"
MIN_SECRET_CHARS = 4
MAX_VALUE_CHARS = 4_000
MAX_EXCEPTION_CHARS = 16_000
MAX_DEPTH = 4

_OWN_KEYS = frozenset({"timestamp", "level", "logger"})  # set by our own processors, never input
_SECRET_KEYS = frozenset({"authorization", "auth", "credentials", "proxy_authorization", "cookie", "set_cookie"})
_SECRET_KEY_SUFFIXES = ("password", "passwd", "passphrase", "secret", "token", "api_key", "apikey", "private_key", "access_key")

_PATTERNS = re.compile(
    r"(?P<keep_auth>\bAUTH\s+(?:PLAIN|LOGIN|XOAUTH2|OAUTHBEARER|CRAM-MD5)\s+)\S+"
    r"|(?P<keep_bearer>\b(?:Bearer|Basic)\s+)[A-Za-z0-9._~+/=-]{6,}"
    r"|(?P<keep_url>\b[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+(?=@)"
    r"|(?P<keep_kv>\b(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key)\b[\"']?\s*[=:]\s*[\"']?)[^\s\"',;&}]+"
    r"|\bSG\.[\w-]{16,}\.[\w-]{16,}"
    r"|\bkey-[0-9a-f]{32}\b"
    r"|\bAKIA[0-9A-Z]{16}\b",
    re.IGNORECASE,
)


class _KnownSecrets:
    """Secret values seen by this process, matched by one compiled alternation."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()
        self.pattern: re.Pattern[str] | None = None

    def add(self, value: str) -> None:
        if len(value) < MIN_SECRET_CHARS:
            return
        forms = {value, base64.b64encode(value.encode()).decode()}
        with self._lock:
            if forms <= self._values:
                return
            self._values |= forms
            alternation = "|".join(re.escape(v) for v in sorted(self._values, key=len, reverse=True))
            self.pattern = re.compile(alternation)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self.pattern = None


_known = _KnownSecrets()


def remember(value: str) -> None:
    """Redact this value (and its base64 form) from every log line of this process from now on."""
    _known.add(value)


def forget_all() -> None:
    """Tests only: drop remembered secrets."""
    _known.clear()


def _keep_prefix(match: re.Match[str]) -> str:
    for group in ("keep_auth", "keep_bearer", "keep_url", "keep_kv"):
        kept = match.group(group)
        if kept is not None:
            return kept + REDACTED
    return REDACTED


def redact_text(text: str, limit: int = MAX_VALUE_CHARS) -> str:
    known = _known.pattern
    if known is not None and known.search(text):
        text = known.sub(REDACTED, text)
    if _PATTERNS.search(text):
        text = _PATTERNS.sub(_keep_prefix, text)
    if len(text) > limit:
        text = f"{text[:limit]}…(+{len(text) - limit} chars)"
    return text


@functools.lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    name = key.lower().replace("-", "_")
    return name in _SECRET_KEYS or name.endswith(_SECRET_KEY_SUFFIXES)


def redact_value(value: Any, depth: int = 0, limit: int = MAX_VALUE_CHARS) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return redact_text(value, limit)
    if depth >= MAX_DEPTH:
        return redact_text(str(value), limit)
    if isinstance(value, Mapping):
        return {
            k: REDACTED if isinstance(k, str) and is_secret_key(k) and v else redact_value(v, depth + 1) for k, v in value.items()
        }
    if isinstance(value, (list, tuple, set, frozenset)):
        return [redact_value(v, depth + 1) for v in value]
    return redact_text(str(value), limit)


def redact_event(_logger: object, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: place it after `format_exc_info`, just before the renderer."""
    for key, value in event_dict.items():
        if key in _OWN_KEYS:
            continue
        if is_secret_key(key) and value not in (None, "", False):
            event_dict[key] = REDACTED
        elif isinstance(value, str):
            if len(value) < MIN_SECRET_CHARS:
                continue
            event_dict[key] = redact_text(value, MAX_EXCEPTION_CHARS if key == "exception" else MAX_VALUE_CHARS)
        elif value is not None and not isinstance(value, (bool, int, float)):
            event_dict[key] = redact_value(value)
    return event_dict
