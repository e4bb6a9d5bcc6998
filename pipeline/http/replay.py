"""The webhook replay cache: a key (Mailgun token, SNS MessageId, body digest) is good once per window."""

from __future__ import annotations

import hashlib
import math

import redis

from pipeline.state import keys


class ReplayCache:
    def __init__(self, client: redis.Redis, window: float) -> None:
        self.client = client
        self.ttl = math.ceil(window * 2)  # a timestamp may be early or late by a whole window

    def seen(self, key: str) -> bool:
        """Mark ``key``; True when it was already marked (a replay)."""
        digest = hashlib.sha256(key.encode()).hexdigest()
        return not self.client.set(keys.webhook_replay(digest), b"1", nx=True, ex=self.ttl)
