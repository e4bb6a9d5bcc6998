"""Per-process cache of tenant snapshots: loaded on first use, bounded (LRU; the `default` tenant is
always held, outside the bound), dropped when a tenant changes.

A change reaches a worker two ways: a PostgreSQL NOTIFY on `mailpipe_registry` (the control plane
sends the tenant's slug in the same transaction as the change; see `pipeline.control.tenants`), and a
version check of every cached tenant at most every `recheck` seconds — one indexed query for all of
them — so a notification lost while a connection was down costs at most that long.
"""

from __future__ import annotations

import enum
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

import structlog

from pipeline.db.channels import REGISTRY_CHANNEL
from pipeline.registry.refs import DEFAULT_TENANT, split_ref
from pipeline.registry.snapshot import SendingAccount, TenantSnapshot
from pipeline.registry.sources import SnapshotSource

log = structlog.get_logger("mailpipe.registry")
CHANNEL = REGISTRY_CHANNEL


class NotCached(enum.Enum):
    NOT_CACHED = "not cached"


NOT_CACHED = NotCached.NOT_CACHED


class Registry:
    def __init__(
        self,
        source: SnapshotSource,
        *,
        max_tenants: int = 2000,
        recheck: float = 1.0,
        full_every: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        on_replace: Callable[[TenantSnapshot, TenantSnapshot | None], None] | None = None,
    ) -> None:
        self.source = source
        self.max_tenants = max_tenants
        self.recheck = recheck
        self.clock = clock
        self.on_replace = on_replace  # told when a cached snapshot is dropped (to close what it opened)
        self._cache: OrderedDict[str, TenantSnapshot] = OrderedDict()
        self._lock = threading.RLock()
        self._loading: dict[str, threading.Lock] = {}
        self._checked_at = clock()
        # Set by the ChangeListener, which then runs the version checks on its own thread, so that a
        # stage's lookup never waits on that query.
        self.checked_in_background = False
        self.full_every = full_every
        self._full_at = clock()
        self._mark: Any = None  # the source's clock at the last incremental check

    def tenant(self, tenant: str) -> TenantSnapshot:
        if not self.checked_in_background:
            self.maybe_recheck()
        with self._lock:
            found = self._cache.get(tenant)
            if found is not None:
                self._cache.move_to_end(tenant)
                return found
            loading = self._loading.setdefault(tenant, threading.Lock())
        with loading:  # one load per tenant however many threads ask at once
            with self._lock:
                found = self._cache.get(tenant)
            if found is not None:
                return found
            snapshot = self.source.load(tenant)
            self._store(snapshot)
            with self._lock:
                self._loading.pop(tenant, None)
            return snapshot

    def prefetch(self, tenants: Iterable[str]) -> None:
        """Load every tenant of a batch that is not held yet, in one round of queries.

        The batch's held tenants count as used now: otherwise, with the cache full, storing the
        batch's new snapshots would evict the batch's own least recent tenants, and each of them would
        then be loaded again, alone, by the lookup that follows."""
        missing: list[str] = []
        with self._lock:
            for tenant in dict.fromkeys(tenants):
                if tenant in self._cache:
                    self._cache.move_to_end(tenant)
                else:
                    missing.append(tenant)
        if not missing:
            return
        try:
            loaded = self.source.load_many(missing)
        except Exception as exc:  # each lookup then loads (or fails) on its own, as without a prefetch
            log.warning("registry_prefetch_failed", tenants=len(missing), error=type(exc).__name__)
            return
        for snapshot in loaded:
            self._store(snapshot)

    def account(self, ref: str) -> SendingAccount | None:
        tenant, name = split_ref(ref)
        return self.tenant(tenant).accounts.get(name)

    def cached_account(self, ref: str) -> SendingAccount | NotCached | None:
        """The account if its tenant's snapshot is held, without any I/O (for the event loop); else NOT_CACHED."""
        tenant, name = split_ref(ref)
        with self._lock:
            snapshot = self._cache.get(tenant)
        return NOT_CACHED if snapshot is None else snapshot.accounts.get(name)

    def invalidate(self, tenant: str) -> None:
        with self._lock:
            dropped = self._cache.pop(tenant, None)
        if dropped is not None:
            log.info("registry_tenant_changed", tenant=tenant, version=dropped.version)
            self._replaced(dropped, None)

    def close(self) -> None:
        with self._lock:
            self._cache.clear()
        close = getattr(self.source, "close", None)
        if close is not None:
            close()

    def cached(self) -> list[str]:
        with self._lock:
            return list(self._cache)

    def check_versions(self) -> None:
        """Drop every cached tenant whose version moved (or that was deleted).

        With thousands of tenants cached, asking for all their versions every second costs real CPU:
        a source that can tell what changed since its last answer (`changed_since`) is asked that,
        and all versions are compared only every `full_every` seconds.
        """
        now = self._checked_at = self.clock()
        changed_since = getattr(self.source, "changed_since", None)
        if changed_since is not None and self._mark is not None and now - self._full_at < self.full_every:
            current, self._mark = changed_since(self._mark)
            with self._lock:  # only the changed tenants are looked at: no copy of every held version each second
                stale = [t for t, version in current.items() if (kept := self._cache.get(t)) and kept.version != version]
        else:
            with self._lock:
                held = {t: s.version for t, s in self._cache.items()}
            # The source's clock first: whatever changes during the full read is caught by the next check.
            mark = changed_since(None)[1] if changed_since is not None else None
            versions = self.source.versions(held) if held else {}
            stale = [t for t, version in versions.items() if version != held[t]]
            self._mark, self._full_at = mark, now
        for tenant in stale:
            self.invalidate(tenant)

    def maybe_recheck(self) -> None:
        if self.clock() - self._checked_at < self.recheck:
            return
        self._checked_at = self.clock()
        try:
            self.check_versions()
        except Exception as exc:  # the database being away must not stop sending with what we hold
            log.warning("registry_version_check_failed", error=type(exc).__name__)

    def _store(self, snapshot: TenantSnapshot) -> None:
        evicted: list[TenantSnapshot] = []
        with self._lock:
            previous = self._cache.get(snapshot.tenant)
            if previous is not None and previous.version == snapshot.version:
                snapshot = previous  # loaded twice at once (a prefetch racing a lookup): keep the first
            self._cache[snapshot.tenant] = snapshot
            self._cache.move_to_end(snapshot.tenant)
            # The platform's own tenant is every tenant's fallback: always held, not counted.
            while len(self._cache) - (DEFAULT_TENANT in self._cache) > self.max_tenants:
                tenant, oldest = self._cache.popitem(last=False)
                if tenant == DEFAULT_TENANT:
                    self._cache[tenant] = oldest
                else:
                    evicted.append(oldest)
        if previous is not None and previous is not snapshot:
            self._replaced(previous, snapshot)
        for old in evicted:
            self._replaced(old, None)

    def _replaced(self, old: TenantSnapshot, new: TenantSnapshot | None) -> None:
        if self.on_replace is not None:
            try:
                self.on_replace(old, new)
            except Exception:
                log.exception("registry_replace_hook_failed", tenant=old.tenant)
