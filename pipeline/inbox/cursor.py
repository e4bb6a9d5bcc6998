"""Where each watched folder was left: UIDVALIDITY and last UID read, kept in Redis.

A restart resumes after the last UID; a UIDVALIDITY change (mailbox rebuilt or migrated) rescans
the backfill window, and the digests of handled messages keep the rescan from repeating anything.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import redis

from pipeline.state import keys, lua_scripts
from pipeline.state.script_pipeline import ScriptPipeline

_ADVANCE = lua_scripts.load("inbox_cursor_advance")


@dataclass(frozen=True)
class Cursor:
    uidvalidity: int | None
    last_uid: int


def message_digest(raw: bytes, size: int) -> str:
    """Identity of a message's content, stable across UIDVALIDITY changes."""
    return hashlib.blake2b(raw + b"\x00" + str(size).encode(), digest_size=16).hexdigest()


class CursorStore:
    def __init__(self, client: redis.Redis, mailbox: str, seen_retention: float) -> None:
        self.client = client
        self.mailbox = mailbox
        self.seen_retention = seen_retention

    def load(self, folder: str) -> Cursor:
        data = self.client.hgetall(keys.inbox_cursor(self.mailbox, folder))
        validity = data.get(b"uidvalidity")
        return Cursor(int(validity) if validity else None, int(data.get(b"last_uid", 0)))

    def reset(self, folder: str, uidvalidity: int, last_uid: int) -> None:
        self.client.hset(
            keys.inbox_cursor(self.mailbox, folder),
            mapping={"uidvalidity": uidvalidity, "last_uid": last_uid, "updated": time.time()},
        )

    def seen(self, digest: str) -> bool:
        return self.client.zscore(keys.inbox_seen(self.mailbox), digest) is not None

    def done(self, folder: str, uidvalidity: int, uid: int, digest: str | None, counter: str | None) -> None:
        """The message at `uid` is handled: remember it and move the cursor past it, in one round trip."""
        now = time.time()
        pipe = ScriptPipeline(self.client, transaction=True)
        if digest:
            pipe.pipe.zadd(keys.inbox_seen(self.mailbox), {digest: now})
        if counter:
            pipe.pipe.hincrby(keys.inbox_counts(self.mailbox), counter, 1)
        pipe.call(_ADVANCE.bind(keys=[keys.inbox_cursor(self.mailbox, folder)], args=[uidvalidity, uid, now]))
        pipe.execute()

    def forget_old(self) -> None:
        self.client.zremrangebyscore(keys.inbox_seen(self.mailbox), "-inf", time.time() - self.seen_retention)

    def counts(self) -> dict[str, int]:
        raw = self.client.hgetall(keys.inbox_counts(self.mailbox))
        return {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()}
