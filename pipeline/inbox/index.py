"""Message-ID → event: written when a message is `sent`, read when a reply or bounce arrives.

`message_id_for` is a one-way hash of tenant and event_id, so the inbox needs this index to find
the event a reply answers. Keys are compared in a normal form: angle brackets, lower case (our
Message-IDs are lower-case hex at a domain; mail systems may change the domain's case).

Each entry is its own key with a TTL ([retention] feedback_window); a bounce or reply arriving
later is found through the delivery log in PostgreSQL (``ColdMessages``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

import redis

from pipeline.state import keys

MAX_ID_CHARS = 250
MAX_CANDIDATES = 40
_ANGLE_ID = re.compile(r"<([^<>\s]{1,250})>")
_VERP_TOKEN = re.compile(r"\+([0-9a-f]{32})@([A-Za-z0-9.-]{1,253})", re.I)
FEEDBACK_WINDOW = 30 * 86_400


@dataclass(frozen=True)
class EventRef:
    tenant: str
    event_id: str
    message_id: str


def normalise_message_id(value: str) -> str | None:
    """`<id@host>` in lower case, or None when the value does not look like a Message-ID."""
    value = value.strip()
    match = _ANGLE_ID.search(value)
    inner = match.group(1) if match else value
    if not inner or len(inner) > MAX_ID_CHARS or "@" not in inner or any(c.isspace() or c in "<>" for c in inner):
        return None
    return f"<{inner.lower()}>"


def message_ids_in(header_value: str) -> list[str]:
    """Every Message-ID in an In-Reply-To or References value, bounded."""
    found = [f"<{m.lower()}>" for m in _ANGLE_ID.findall(header_value[:20_000]) if "@" in m]
    if not found:
        single = normalise_message_id(header_value[: MAX_ID_CHARS + 2])
        found = [single] if single else []
    if len(found) > MAX_CANDIDATES:  # a long thread: its root and its latest replies matter
        half = MAX_CANDIDATES // 2
        found = found[:half] + found[-half:]
    return found


def verp_message_ids(addresses: list[str], message_id_domain: str) -> list[str]:
    """`bounces+<32 hex>@domain` → the Message-ID `message_id_for` gives that event (its hash)."""
    out = []
    for address in addresses[:20]:
        for token, _ in _VERP_TOKEN.findall(address[:500]):
            out.append(f"<{token.lower()}@{message_id_domain.lower()}>")
    return out


def remember_sent(pipe: redis.client.Pipeline, tenant: str, message_id: str, event_id: str, ttl: int = FEEDBACK_WINDOW) -> None:
    """Queue the index write on a pipeline (classify does this for every `sent`)."""
    normal = normalise_message_id(message_id)
    if normal:
        pipe.set(keys.message_ref(tenant, normal), event_id, ex=ttl)


class ColdMessages(Protocol):
    """The delivery log's Message-ID lookup, for mail that arrives after the Redis entry expired."""

    def find_message(self, message_ids: list[str], tenants: list[str] | None) -> EventRef | None: ...


class MessageIndex:
    def __init__(self, client: redis.Redis, *, ttl: float = FEEDBACK_WINDOW, cold: ColdMessages | None = None) -> None:
        self.client = client
        self.ttl = max(1, int(ttl))
        self.cold = cold

    def remember(self, sent: list[tuple[str, str, str]]) -> None:
        """Index (tenant, message_id, event_id) triples in one round trip."""
        if not sent:
            return
        pipe = self.client.pipeline(transaction=False)
        for tenant, message_id, event_id in sent:
            remember_sent(pipe, tenant, message_id, event_id, self.ttl)
        pipe.execute()

    def find(self, message_ids: list[str], tenants: list[str] | None = None) -> EventRef | None:
        """The first candidate (in the order given) that names one of our sent messages."""
        normal = (normalise_message_id(m) for m in message_ids[: MAX_CANDIDATES * 2] if m)
        candidates = [m for m in dict.fromkeys(normal) if m][:MAX_CANDIDATES]
        if not candidates:
            return None
        asked = tenants
        if tenants is None:
            known = self.client.smembers(keys.tenants())
            tenants = sorted(t.decode() if isinstance(t, bytes) else t for t in known) or ["default"]
        pipe = self.client.pipeline(transaction=False)
        for tenant in tenants:
            pipe.mget([keys.message_ref(tenant, m) for m in candidates])
            pipe.hmget(keys.message_index(tenant), candidates)
        answers = pipe.execute()
        per_tenant = [
            [a or b for a, b in zip(ttl_keys, legacy, strict=True)]
            for ttl_keys, legacy in zip(answers[::2], answers[1::2], strict=True)
        ]
        for position, message_id in enumerate(candidates):
            for tenant, values in zip(tenants, per_tenant, strict=True):
                if values[position] is not None:
                    return EventRef(tenant, values[position].decode(), message_id)
        return self.cold.find_message(candidates, asked) if self.cold is not None else None
