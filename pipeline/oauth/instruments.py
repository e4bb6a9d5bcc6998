"""OAuth metrics: refreshes at the token endpoint by outcome, and grants that need the mailbox owner again."""

from __future__ import annotations

from pipeline.observe.metrics import Counter  # registers in mailpipe's own registry, never the global one

REFRESH_OUTCOMES = ("ok", "refused", "unavailable")

REFRESHES = Counter(
    "mailpipe_oauth_refreshes_total",
    "Access-token refreshes at a token endpoint (one per account however many workers needed it).",
    ["account", "provider", "outcome"],
)
RECONNECT_NEEDED = Counter(
    "mailpipe_oauth_reconnect_needed_total",
    "OAuth grants the provider revoked (invalid_grant): the mailbox owner must connect the account again.",
    ["account", "provider"],
)
ROTATIONS = Counter(
    "mailpipe_oauth_refresh_token_rotations_total",
    "Refresh tokens the token endpoint replaced (kept in Redis, and sealed in the registry for tenants' accounts).",
    ["account", "provider"],
)


def refreshed(account: str, provider: str, outcome: str) -> None:
    REFRESHES.labels(account=account, provider=provider, outcome=outcome).inc()


def reconnect_needed(account: str, provider: str) -> None:
    RECONNECT_NEEDED.labels(account=account, provider=provider).inc()


def rotated(account: str, provider: str) -> None:
    ROTATIONS.labels(account=account, provider=provider).inc()
