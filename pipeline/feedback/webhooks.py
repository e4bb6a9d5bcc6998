"""What a provider plugin's ``mailpipe_parse_webhook`` receives besides the request, and may raise.

The hook does no network I/O: the host hands it capabilities instead. ``seen`` is the replay
cache (Redis behind it), ``certificates`` fetches and caches signing certificates (SNS), and a
verified SNS ``SubscribeURL`` is only *reported* in ``subscribe_urls``; the host decides whether
to confirm it. Every replay key a request claims is listed in ``claimed``: the host releases them
when the events could not be applied, so the provider's retry of that request is not a replay.
Everything in ``options`` comes from the provider's ``[webhooks.<provider>]`` table, with
``env:``/``file:`` values resolved to ``SecretStr``.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
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


def _forget(key: str) -> None:
    return None


@dataclass(frozen=True)
class WebhookSettings:
    options: Mapping[str, Any] = field(default_factory=dict)
    replay_window: float = 300.0
    now: float = 0.0
    seen: Callable[[str], bool] = _never_seen  # marks key; True when it was already marked within the window
    certificates: Callable[[str], bytes] | None = None  # URL → PEM certificate (fetched once, cached)
    path_token: str | None = None  # the secret segment of POST /webhooks/{provider}/{path_token}
    subscribe_urls: list[str] = field(default_factory=list)  # verified SNS SubscribeURLs, for the host
    release: Callable[[str], None] = _forget  # unmarks a key claimed through ``seen``
    claimed: list[str] = field(default_factory=list)  # keys this request marked, released if applying fails

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
        """Refuse a signed request whose key (token, MessageId, signed digest) was already accepted."""
        if not self.first_delivery(key, provider):
            raise WebhookRejected(f"{provider}: replayed request")

    def first_delivery(self, key: str, provider: str) -> bool:
        """Claim ``key``; False when a request with it was already accepted (or is being applied)."""
        marked = f"{provider}:{key}"
        if self.seen(marked):
            return False
        self.claimed.append(marked)
        return True

    def release_claims(self) -> None:
        """Forget this request's keys: its events were not applied, so a retry must get through."""
        while self.claimed:
            self.release(self.claimed.pop())


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
    """Read a provider's diagnostic text the way bounce mail is read (docs/architecture.md: "Outcomes and classification")."""
    from pipeline.bounces.codes import find_reply_code, find_status
    from pipeline.bounces.reasons import decide_reason

    text = (diagnostic or "")[:2000]
    status = status or find_status(text)
    code = code or find_reply_code(text)
    reason = decide_reason(status=status, reply=code, diagnostic=text, hint=hint)
    return Failure(reason=reason, status=status, code=code)


_FRACTION = re.compile(r"(\.\d{1,6})\d*")


def iso_time(value: object) -> float | None:
    """An ISO 8601 time as epoch seconds; None when it is not one.

    Providers write up to 7 fractional digits (Postmark: ``2019-11-05T16:33:54.9070259Z``) and
    ``Z`` or an offset; Python reads at most 6, so the rest are cut (sub-microsecond, irrelevant).
    """
    if not isinstance(value, str) or not 10 <= len(value) <= 40:
        return None
    text = _FRACTION.sub(r"\1", value.strip(), count=1)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


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
