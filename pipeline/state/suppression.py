"""Suppression per tenant: address → reason and time, shared by every account and route.

This hash is the hot index the route stage reads; the database keeps the suppression lists
(pipeline/control/suppressions.py). A worker's own additions (bounces, complaints, unsubscribes)
also go onto the tenant's suppression log stream, which the archiver copies into the database, so
losing Redis loses no suppression: ``mailpipe suppression rebuild`` reloads this index. A
suppression scoped to one list is stored under ``@<list>:<address>``; tenant-wide ones under the
bare address.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import redis

from pipeline.state import keys


@dataclass
class Suppression:
    address: str
    reason: str
    at: float
    source: str


def _norm(address: str) -> str:
    return address.strip().lower()


def _field(address: str, scope: str) -> str:
    return f"@{scope}:{_norm(address)}" if scope else _norm(address)


class SuppressionStore:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def add(self, tenant: str, address: str, reason: str, source: str = "manual", *, log: bool = True) -> bool:
        """Suppress; with ``log`` (a worker's own finding) also onto the stream the database is fed from."""
        now = time.time()
        record = json.dumps({"reason": reason, "at": now, "source": source})
        pipe = self.client.pipeline(transaction=False)
        pipe.hsetnx(keys.suppression(tenant), _norm(address), record)
        if log:
            pipe.sadd(keys.tenants(), tenant)
            fields = {"tenant": tenant, "address": _norm(address), "reason": reason, "source": source, "at": now}
            pipe.xadd(keys.suppression_stream(tenant), fields, maxlen=1_000_000, approximate=True)  # type: ignore[arg-type]
        return bool(pipe.execute()[0])

    def load(self, tenant: str, rows: list[tuple[str, str, str, str, float]], *, replace: bool = False) -> int:
        """Write (address, list scope or "", reason, source, at) rows into the hot index; ``replace`` empties it first."""
        pipe = self.client.pipeline(transaction=False)
        if replace:
            pipe.delete(keys.suppression(tenant))
        mapping = {
            _field(address, scope): json.dumps({"reason": reason, "at": at, "source": source})
            for address, scope, reason, source, at in rows
        }
        for start in range(0, len(mapping), 10_000):
            chunk = dict(list(mapping.items())[start : start + 10_000])
            pipe.hset(keys.suppression(tenant), mapping=chunk)  # type: ignore[arg-type]
        pipe.execute()
        return len(mapping)

    def discard(self, tenant: str, address: str, scope: str = "") -> bool:
        """Remove one entry of the hot index (after the database removed it)."""
        return bool(self.client.hdel(keys.suppression(tenant), _field(address, scope)))

    def remove(self, tenant: str, address: str) -> bool:
        pipe = self.client.pipeline(transaction=False)
        pipe.hdel(keys.suppression(tenant), _norm(address))
        pipe.delete(keys.soft_bounces(tenant, _norm(address)))
        return bool(pipe.execute()[0])

    def lookup(self, tenant: str, addresses: list[str], lists: list[str | None] | None = None) -> list[Suppression | None]:
        """Per address, its tenant-wide suppression, else the one of its list (``lists`` in the same order)."""
        return self.lookup_many({tenant: (addresses, lists or [None] * len(addresses))})[tenant]

    def lookup_many(self, wanted: dict[str, tuple[list[str], list[str | None]]]) -> dict[str, list[Suppression | None]]:
        """`lookup` for several tenants (tenant → addresses, lists) in one round trip."""
        asked = {tenant: pair for tenant, pair in wanted.items() if pair[0]}
        pipe = self.client.pipeline(transaction=False)
        for tenant, (addresses, lists) in asked.items():
            fields = [_norm(a) for a in addresses]
            scoped = [_field(a, name) if name else "" for a, name in zip(addresses, lists, strict=True)]
            pipe.hmget(keys.suppression(tenant), fields + scoped)
        answers = pipe.execute() if asked else []
        out: dict[str, list[Suppression | None]] = {tenant: [] for tenant in wanted}
        for (tenant, (addresses, _)), answer in zip(asked.items(), answers, strict=True):
            half = len(addresses)
            for address, wide, listed in zip(addresses, answer[:half], answer[half:], strict=True):
                value = wide if wide is not None else listed
                if value is None:
                    out[tenant].append(None)
                else:
                    data = json.loads(value)
                    out[tenant].append(Suppression(_norm(address), data["reason"], data["at"], data.get("source", "")))
        return out

    def all(self, tenant: str) -> list[Suppression]:
        out = []
        for address, value in self.client.hscan_iter(keys.suppression(tenant), count=1000):
            data = json.loads(value)
            out.append(Suppression(address.decode(), data["reason"], data["at"], data.get("source", "")))
        return sorted(out, key=lambda s: s.at)

    def count(self, tenant: str) -> int:
        return int(self.client.hlen(keys.suppression(tenant)))

    def soft_bounce(self, tenant: str, address: str, *, limit: int, window: float, reason: str) -> bool:
        """Count a soft bounce; suppress once `limit` happened within `window` seconds."""
        key = keys.soft_bounces(tenant, _norm(address))
        now = time.time()
        pipe = self.client.pipeline(transaction=False)
        pipe.zadd(key, {f"{now}": now})
        pipe.zremrangebyscore(key, "-inf", now - window)
        pipe.zcard(key)
        pipe.expire(key, int(window) + 60)
        count = pipe.execute()[2]
        if count >= limit:
            return self.add(tenant, address, f"soft_bounce_limit:{reason}", source="bounce")
        return False
