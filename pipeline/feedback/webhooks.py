"""What a provider plugin's ``mailpipe_parse_webhook`` receives besides the request, and may raise.

The hook does no network I/O: the host hands it capabilities instead. ``seen`` is the replay
cache (Redis behind it), ``certificates`` fetches and caches signing certificates (SNS), and a
verified SNS ``SubscribeURL`` is only *reported* in ``subscribe_urls``; the host decides whether
to confirm it. Everything in ``options`` comes from the provider's ``[webhooks.<provider>]``
table, with ``env:``/``file:`` values resolved to ``SecretStr``.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from pipeline.errors import MailpipeError


class WebhookRejected(MailpipeError):
    """Not authentic: missing or bad signature or credentials, stale timestamp, replay (HTTP 401)."""


class WebhookPayloadError(MailpipeError):
    """Authentic, but not a payload the plugin understands (HTTP 400)."""


class WebhookNotConfigured(MailpipeError):
    """The provider's ``[webhooks.<provider>]`` table lacks the key needed to verify (HTTP 401)."""


def _never_seen(key: str) -> bool:
    return False


@dataclass(frozen=True)
class WebhookSettings:
    options: Mapping[str, Any] = field(default_factory=dict)
    replay_window: float = 300.0
    now: float = 0.0
    seen: Callable[[str], bool] = _never_seen  # marks key; True when it was already marked within the window
    certificates: Callable[[str], bytes] | None = None  # URL → PEM certificate (fetched once, cached)
    path_token: str | None = None  # the secret segment of POST /webhooks/{provider}/{path_token}
    subscribe_urls: list[str] = field(default_factory=list)  # verified SNS SubscribeURLs, for the host

    def __repr__(self) -> str:  # options hold secrets
        return f"WebhookSettings(options={sorted(self.options)}, replay_window={self.replay_window})"

    def secret(self, key: str) -> str | None:
        value = self.options.get(key)
        if isinstance(value, SecretStr):
            return value.get_secret_value()
        return value if isinstance(value, str) and value else None

    def require_secret(self, provider: str, key: str) -> str:
        value = self.secret(key)
        if value is None:
            raise WebhookNotConfigured(f"[webhooks.{provider}] {key} is not configured")
        return value

    def check_fresh(self, timestamp: float, provider: str) -> None:
        """Refuse a signed timestamp outside the replay window (either side: clocks drift)."""
        if abs(self.now - timestamp) > self.replay_window:
            raise WebhookRejected(f"{provider}: timestamp outside the {self.replay_window:.0f}s replay window")

    def check_replay(self, key: str, provider: str) -> None:
        if self.seen(f"{provider}:{key}"):
            raise WebhookRejected(f"{provider}: replayed request")


def equal(a: str, b: str) -> bool:
    """Constant-time comparison of two texts (credentials, MACs)."""
    return hmac.compare_digest(a.encode(), b.encode())


@dataclass(frozen=True)
class Failure:
    """A provider's bounce or deferral in our taxonomy: reason, enhanced status, reply code."""

    reason: str
    status: str | None
    code: int | None


def classify_failure(diagnostic: str, *, status: str | None = None, code: int | None = None, hint: str | None = None) -> Failure:
    """Read a provider's diagnostic text the way bounce mail is read (ARCHITECTURE §3)."""
    from pipeline.bounces.codes import find_reply_code, find_status
    from pipeline.bounces.reasons import decide_reason

    text = (diagnostic or "")[:2000]
    status = status or find_status(text)
    code = code or find_reply_code(text)
    reason = decide_reason(status=status, reply=code, diagnostic=text, hint=hint)
    return Failure(reason=reason, status=status, code=code)


def numeric(value: object) -> float | None:
    """A timestamp or number from JSON that may arrive as text; None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and len(value) < 40:
        try:
            return float(value)
        except ValueError:
            return None
    return None
