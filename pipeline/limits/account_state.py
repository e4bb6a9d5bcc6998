"""Runtime account state in Redis (never in the config file): pause, health, back-off."""

from __future__ import annotations

import enum
import time

import redis

from pipeline.state import keys


class Health(enum.StrEnum):
    UP = "up"
    PAUSED = "paused"
    AUTH_FAILED = "auth_failed"


class AccountState:
    def __init__(self, client: redis.Redis, tenant: str = "default") -> None:
        self.client = client
        self.tenant = tenant

    def pause(self, account: str, reason: str, health: Health = Health.PAUSED) -> None:
        self.client.hset(
            keys.account_state(self.tenant, account),
            mapping={"paused": "1", "health": health.value, "reason": reason, "since": time.time()},
        )

    def resume(self, account: str) -> None:
        self.client.hset(
            keys.account_state(self.tenant, account),
            mapping={"paused": "0", "health": Health.UP.value, "reason": "", "since": time.time()},
        )

    def paused(self, accounts: list[str]) -> dict[str, bool]:
        pipe = self.client.pipeline(transaction=False)
        for account in accounts:
            pipe.hget(keys.account_state(self.tenant, account), "paused")
        return {a: v == b"1" for a, v in zip(accounts, pipe.execute(), strict=True)}

    def health(self, account: str) -> dict[str, str]:
        raw = self.client.hgetall(keys.account_state(self.tenant, account))
        data = {_text(k): _text(v) for k, v in raw.items()}
        data.setdefault("health", Health.UP.value)
        return data


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
