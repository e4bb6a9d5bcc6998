"""Every Redis key mailpipe uses, namespaced mailpipe:{tenant}:… (docs/architecture.md: "Messages between stages")."""

from __future__ import annotations

import hashlib
import zlib

PREFIX = "mailpipe"


def event(tenant: str, event_id: str) -> str:
    return f"{PREFIX}:{tenant}:ev:{event_id}"


def history(tenant: str, event_id: str) -> str:
    return f"{PREFIX}:{tenant}:hist:{event_id}"


def events_stream(tenant: str) -> str:
    return f"{PREFIX}:{tenant}:events"


def message_index(tenant: str) -> str:
    """The old unbounded Message-ID → event_id hash (read only, until its entries are gone)."""
    return f"{PREFIX}:{tenant}:msgid"


def message_ref(tenant: str, message_id: str) -> str:
    """One Message-ID → event_id entry with its own TTL ([retention] feedback_window)."""
    return f"{PREFIX}:{tenant}:mid:{message_id}"


def dedupe_marker(tenant: str, event_id: str) -> str:
    """The first design's marker, one key per final event: read only until the last ones expire."""
    return f"{PREFIX}:{tenant}:seen:{event_id}"


def dedupe_buckets(tenant: str) -> str:
    """The prefix of the tenant's dedupe buckets: ``<prefix><bucket>:<shard>`` hashes of event_id → 1.

    A bucket is one period (a day by default) of final outcomes, split in shards small enough that
    Redis keeps each hash as a listpack (a few bytes per field instead of a key per event).
    """
    return f"{PREFIX}:{tenant}:dedupe:"


def dedupe_bucket(tenant: str, bucket: int, shard: int) -> str:
    return f"{dedupe_buckets(tenant)}{bucket}:{shard}"


def dedupe_slot(event_id: str, shards: int) -> tuple[int, str]:
    """An event_id's shard and its field in a bucket; a long id is stored as a digest so the listpack
    stays compact (Redis converts a hash whose values exceed 64 bytes)."""
    raw = event_id.encode()
    shard = zlib.crc32(raw) % shards
    return shard, (event_id if len(raw) <= 48 else "#" + hashlib.sha256(raw).hexdigest()[:32])


def dedupe_in_database() -> str:
    """Set (with a TTL of the dedupe window) by every status store of a deployment with a database:
    its final events leave no marker in Redis, so a submitter without the database must not accept."""
    return f"{PREFIX}:dedupe-in-database"


def dead_letter(tenant: str) -> str:
    return f"{PREFIX}:{tenant}:deadletter"


def refused_input(tenant: str) -> str:
    return f"{PREFIX}:{tenant}:refused"


def pending(tenant: str) -> str:
    """Sorted set of accepted, not yet final events scored by last progress time."""
    return f"{PREFIX}:{tenant}:pending"


def sweeper_lock() -> str:
    """Held by the worker that sweeps stalled events this interval (one sweeper at a time)."""
    return f"{PREFIX}:sweeper:lock"


def tenants() -> str:
    return f"{PREFIX}:tenants"


def suppression(tenant: str) -> str:
    return f"{PREFIX}:{tenant}:suppressed"


def suppression_stream(tenant: str) -> str:
    """Every suppression a worker adds, for the archiver to copy into the database."""
    return f"{PREFIX}:{tenant}:suppression-log"


def soft_bounces(tenant: str, address: str) -> str:
    return f"{PREFIX}:{tenant}:softbounce:{address}"


def ledger(tenant: str, event_id: str) -> str:
    return f"{PREFIX}:{tenant}:ledger:{event_id}"


def account_state(tenant: str, account: str) -> str:
    """Hash: paused, health, reason, backoff factor, last throttle."""
    return f"{PREFIX}:{tenant}:account:{account}"


def rate_tat(tenant: str, scope: str) -> str:
    return f"{PREFIX}:{tenant}:rl:tat:{scope}"


def window_count(tenant: str, scope: str, window: str, bucket: int | str) -> str:
    return f"{PREFIX}:{tenant}:rl:{window}:{scope}:{bucket}"


def outcome_counts(tenant: str) -> str:
    return f"{PREFIX}:{tenant}:outcomes"


def rotation(tenant: str, route: str) -> str:
    return f"{PREFIX}:{tenant}:rotation:{route}"


def inbox_cursor(mailbox: str, folder: str) -> str:
    """Hash: UIDVALIDITY and last UID read of one watched IMAP folder."""
    return f"{PREFIX}:inbox:{mailbox}:cursor:{folder}"


def inbox_seen(mailbox: str) -> str:
    """Sorted set of digests of messages already handled, so a UIDVALIDITY rescan repeats nothing."""
    return f"{PREFIX}:inbox:{mailbox}:seen"


def inbox_counts(mailbox: str) -> str:
    """Hash: messages read per kind (reply, bounce, ignored, …)."""
    return f"{PREFIX}:inbox:{mailbox}:counts"


def inbox_lease(mailbox: str) -> str:
    """String with a TTL: the owner id of the one `inbox watch` allowed to watch this mailbox."""
    return f"{PREFIX}:inbox:{mailbox}:lease"


def webhook_replay(digest: str) -> str:
    """A webhook's replay key (Mailgun token, SNS MessageId, body digest) seen within the window."""
    return f"{PREFIX}:webhook-replay:{digest}"


def sns_pending_subscriptions() -> str:
    """SNS SubscribeURLs received but not confirmed (``confirm_subscriptions = false``), by arrival time."""
    return f"{PREFIX}:webhook-sns-pending"
