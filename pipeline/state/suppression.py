"""Global suppression per tenant: address → reason and time, shared by every route."""

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


class SuppressionStore:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def add(self, tenant: str, address: str, reason: str, source: str = "manual") -> bool:
        record = json.dumps({"reason": reason, "at": time.time(), "source": source})
        return bool(self.client.hsetnx(keys.suppression(tenant), _norm(address), record))

    def remove(self, tenant: str, address: str) -> bool:
        pipe = self.client.pipeline(transaction=False)
        pipe.hdel(keys.suppression(tenant), _norm(address))
        pipe.delete(keys.soft_bounces(tenant, _norm(address)))
        return bool(pipe.execute()[0])

    def lookup(self, tenant: str, addresses: list[str]) -> list[Suppression | None]:
        if not addresses:
            return []
        raw = self.client.hmget(keys.suppression(tenant), [_norm(a) for a in addresses])
        out: list[Suppression | None] = []
        for address, value in zip(addresses, raw, strict=True):
            if value is None:
                out.append(None)
            else:
                data = json.loads(value)
                out.append(Suppression(_norm(address), data["reason"], data["at"], data.get("source", "")))
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
