"""One watcher per mailbox across every host: a Redis lease per mailbox, held while its poller runs.

The lease is a key holding the owner's id with a TTL (`SET key owner NX PX`). Its holder renews it
well within the TTL; a holder that dies stops renewing, so the key expires and another
`inbox watch` takes the mailbox over within one lease time. A holder that finds the key in other
hands (it stalled past the TTL) must stop its poller at once.
"""

from __future__ import annotations

import os
import socket
import uuid

import redis

from pipeline.state import keys, lua_scripts

_HOLD = lua_scripts.load("inbox_lease_hold")
_RELEASE = lua_scripts.load("inbox_lease_release")


def new_owner_id() -> str:
    """Unique per supervisor; host and pid first so an operator can tell who holds a mailbox."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class MailboxLease:
    def __init__(self, client: redis.Redis, mailbox: str, owner: str, ttl: float) -> None:
        if ttl <= 0:
            raise ValueError("lease ttl must be positive")
        self.client = client
        self.key = keys.inbox_lease(mailbox)
        self.owner = owner
        self.ttl_ms = max(1, int(ttl * 1000))

    def hold(self) -> bool:
        """Take the lease if free, renew it if ours; False when another owner holds it."""
        call = _HOLD.bind(keys=[self.key], args=[self.owner, self.ttl_ms])
        return bool(lua_scripts.run(self.client, call))

    def release(self) -> bool:
        """Free the lease (only if still ours) so another watcher need not wait for it to expire."""
        return bool(lua_scripts.run(self.client, _RELEASE.bind(keys=[self.key], args=[self.owner])))


def lease_holder(client: redis.Redis, mailbox: str) -> str | None:
    value = client.get(keys.inbox_lease(mailbox))
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)
