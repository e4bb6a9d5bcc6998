"""Every Redis key mailpipe uses, namespaced mailpipe:{tenant}:… (ARCHITECTURE §2)."""

from __future__ import annotations

PREFIX = "mailpipe"


def event(tenant: str, event_id: str) -> str:
    return f"{PREFIX}:{tenant}:ev:{event_id}"


def history(tenant: str, event_id: str) -> str:
    return f"{PREFIX}:{tenant}:hist:{event_id}"


def events_stream(tenant: str) -> str:
    return f"{PREFIX}:{tenant}:events"


def message_index(tenant: str) -> str:
    """Message-ID → event_id, so bounces and replies find their event."""
    return f"{PREFIX}:{tenant}:msgid"


def dead_letter(tenant: str) -> str:
    return f"{PREFIX}:{tenant}:deadletter"


def refused_input(tenant: str) -> str:
    return f"{PREFIX}:{tenant}:refused"


def pending(tenant: str) -> str:
    """Sorted set of accepted, not yet final events scored by last progress time."""
    return f"{PREFIX}:{tenant}:pending"


def tenants() -> str:
    return f"{PREFIX}:tenants"


def suppression(tenant: str) -> str:
    return f"{PREFIX}:{tenant}:suppressed"


def soft_bounces(tenant: str, address: str) -> str:
    return f"{PREFIX}:{tenant}:softbounce:{address}"


def ledger(tenant: str, event_id: str) -> str:
    return f"{PREFIX}:{tenant}:ledger:{event_id}"


def account_state(tenant: str, account: str) -> str:
    """Hash: paused, health, reason, backoff factor, last throttle."""
    return f"{PREFIX}:{tenant}:account:{account}"


def rate_tat(tenant: str, scope: str) -> str:
    return f"{PREFIX}:{tenant}:rl:tat:{scope}"


def window_count(tenant: str, scope: str, window: str, bucket: int | str) -> str:
    return f"{PREFIX}:{tenant}:rl:{window}:{scope}:{bucket}"


def outcome_counts(tenant: str) -> str:
    return f"{PREFIX}:{tenant}:outcomes"


def rotation(tenant: str, route: str) -> str:
    return f"{PREFIX}:{tenant}:rotation:{route}"
