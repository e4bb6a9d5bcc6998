"""SNS subscriptions waiting for an operator: the SubscribeURLs of verified SubscriptionConfirmations.

With ``[webhooks.ses] confirm_subscriptions = false`` (the default) mailpipe never calls AWS; the
URL is logged and kept here, and ``mailpipe webhooks pending`` shows it so it can be opened by hand.
SNS tokens are valid for three days, so older entries are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from pipeline.state import keys

TOKEN_LIFETIME = 3 * 86_400.0
MAX_PENDING = 100


@dataclass(frozen=True)
class PendingSubscription:
    url: str
    received_at: float


class PendingSubscriptions:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def add(self, url: str, now: float) -> None:
        key = keys.sns_pending_subscriptions()
        with self.client.pipeline() as pipe:
            pipe.zadd(key, {url: now})
            pipe.zremrangebyscore(key, "-inf", now - TOKEN_LIFETIME)
            pipe.zremrangebyrank(key, 0, -MAX_PENDING - 1)
            pipe.expire(key, int(TOKEN_LIFETIME))
            pipe.execute()

    def remove(self, url: str) -> None:
        self.client.zrem(keys.sns_pending_subscriptions(), url)

    def list(self, now: float) -> list[PendingSubscription]:
        rows: list[tuple[bytes, float]] = self.client.zrangebyscore(  # type: ignore[assignment]
            keys.sns_pending_subscriptions(), now - TOKEN_LIFETIME, "+inf", withscores=True
        )
        return [PendingSubscription(url=url.decode(), received_at=float(at)) for url, at in rows]
