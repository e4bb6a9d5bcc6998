"""The webhook replay cache: a key (Mailgun token, SNS MessageId, signed digest) is good once per window.

A key is claimed when a request is verified and released again when its events could not be
applied, so a provider's retry after our 5xx is applied rather than refused as a replay.
"""

from __future__ import annotations

import hashlib
import math

import redis

from pipeline.state import keys


class ReplayCache:
    def __init__(self, client: redis.Redis, window: float) -> None:
        self.client = client
        self.ttl = math.ceil(window * 2)  # a timestamp may be early or late by a whole window

    def _key(self, key: str) -> str:
        return keys.webhook_replay(hashlib.sha256(key.encode()).hexdigest())

    def seen(self, key: str) -> bool:
        """Mark ``key``; True when it was already marked (a replay, or the same request in flight)."""
        return not self.client.set(self._key(key), b"1", nx=True, ex=self.ttl)

    def release(self, key: str) -> None:
        """Unmark ``key``: the request that claimed it was not applied."""
        self.client.delete(self._key(key))
