"""The per-mailbox watcher lease on a real Redis, and the supervisor over the TOML's mailboxes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from eventually import eventually
from inbox_kit import Dovecot

from pipeline.config import Config, load_config
from pipeline.context import build_context
from pipeline.inbox.lease import MailboxLease, lease_holder
from pipeline.inbox.supervisor import Supervisor


def test_a_lease_is_held_by_one_owner_renewed_by_it_and_free_again_after_its_time(redis_client: redis.Redis) -> None:
    first = MailboxLease(redis_client, "account:acme/main", "host-a:1:aa", ttl=0.5)
    second = MailboxLease(redis_client, "account:acme/main", "host-b:2:bb", ttl=0.5)

    assert first.hold() and not second.hold()
    time.sleep(0.3)
    assert first.hold()  # renewed: a full lease from now
    time.sleep(0.3)
    assert not second.hold() and lease_holder(redis_client, "account:acme/main") == "host-a:1:aa"
    time.sleep(0.6)  # no renewal: the holder counts as dead
    assert second.hold() and not first.hold()


def test_only_the_holder_releases_a_lease(redis_client: redis.Redis) -> None:
    first = MailboxLease(redis_client, "shared:bounces", "a", ttl=30)
    second = MailboxLease(redis_client, "shared:bounces", "b", ttl=30)
    assert first.hold()

    assert not second.release() and lease_holder(redis_client, "shared:bounces") == "a"
    assert first.release() and lease_holder(redis_client, "shared:bounces") is None
    assert second.hold()


def test_a_lease_shorter_than_two_intervals_is_refused(redis_client: redis.Redis, config: Config) -> None:
    with pytest.raises(ValueError, match="lease_seconds"):
        Supervisor(build_context(config), lease_seconds=1.0, interval=0.5)


def test_a_toml_mailbox_is_watched_by_one_of_two_supervisors(dovecot: Dovecot, imap_config: Callable[..., Path]) -> None:
    path = imap_config()
    supervisors = [Supervisor(build_context(load_config(path)), lease_seconds=3, interval=0.3) for _ in range(2)]
    threads = [threading.Thread(target=s.run, daemon=True) for s in supervisors]
    for thread in threads:
        thread.start()
    try:
        both = eventually(lambda: [s.watching() for s in supervisors], lambda w: sum(map(len, w)) == 1, timeout=15)
        time.sleep(1.0)
        assert [list(w) for w in both] in (
            [["account:alpha"], []],
            [[], ["account:alpha"]],
        )
        assert sum(len(s.watching()) for s in supervisors) == 1
        assert eventually(dovecot.sessions, lambda n: n == 1, timeout=10) == 1
    finally:
        for supervisor in supervisors:
            supervisor.stop.set()
        for thread in threads:
            thread.join(40)
    assert not any(t.is_alive() for t in threads)
    assert lease_holder(supervisors[0].ctx.redis, "account:alpha") is None
