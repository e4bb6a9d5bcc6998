"""`inbox watch` keeps its pollers in step with the TOML and the registry, one watcher per mailbox.

Every `interval` seconds, and at once when the registry announces a change (PostgreSQL NOTIFY on
`mailpipe_registry`), the supervisor reconciles:

1. renews the lease of every mailbox it watches; a lease found in other hands stops that poller;
2. lists the wanted mailboxes: the TOML's (as `mailboxes_of`) and every tenant's reply-tracking
   account with an IMAP mailbox (`ReplyMailboxes`);
3. stops the pollers of mailboxes no longer wanted, or whose settings changed (new password,
   host, folder…), and restarts a poller that ended;
4. starts a poller for each wanted mailbox whose lease it can take (`SET NX PX`).

A stopped poller keeps its lease until its thread has ended (it may be finishing a message), then
the lease is released, so a replacement here or on another host never overlaps it. A supervisor
that dies stops renewing: its leases expire and the others take its mailboxes over within
`lease_seconds` plus one interval.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field

import psycopg
import structlog

from pipeline.context import StageContext
from pipeline.db.channels import REGISTRY_CHANNEL
from pipeline.errors import MailpipeError
from pipeline.inbox.lease import MailboxLease, new_owner_id
from pipeline.inbox.poller import Mailbox, Poller, mailboxes_of
from pipeline.oauth.cache import grant_fingerprint
from pipeline.registry.mailboxes import ReplyMailbox, ReplyMailboxes
from pipeline.registry.sources import DatabaseSource

log = structlog.get_logger("mailpipe.inbox")

LEASE_SECONDS = 15.0
INTERVAL_SECONDS = 2.0
JOIN_SECONDS = 30.0


def settings_fingerprint(mailbox: Mailbox) -> str:
    """Changes whenever anything the poller connects or reads with changes, the password or OAuth grant
    included (hashed: the fingerprint may be logged, the secrets never)."""
    settings = mailbox.settings
    try:
        secret = settings.password.resolve().get_secret_value() if settings.password is not None else ""
    except MailpipeError:
        secret = ""  # unresolvable now; the poller reports it, and a fix changes the fingerprint
    data = settings.model_dump(mode="json", exclude={"password"}) | {"tenant": mailbox.tenant, "secret": secret}
    if mailbox.oauth is not None:  # a reconnected (or rotated) grant restarts the poller with it
        data["grant"] = grant_fingerprint(mailbox.oauth)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def registry_mailbox(found: ReplyMailbox) -> Mailbox:
    return Mailbox(f"account:{found.ref}", found.settings, tenant=found.tenant, oauth=found.oauth)


def reply_mailboxes(ctx: StageContext) -> ReplyMailboxes | None:
    """The registry's reply mailboxes when the deployment has a database; None for a TOML-only one."""
    source = ctx.registry.source
    return ReplyMailboxes(source) if isinstance(source, DatabaseSource) else None


def _selected(mailbox: Mailbox, only: list[str] | None) -> bool:
    return not only or mailbox.name in only or mailbox.name.split(":", 1)[1] in only


@dataclass
class _Watch:
    mailbox: Mailbox
    fingerprint: str
    lease: MailboxLease
    poller: Poller
    thread: threading.Thread
    renewed_at: float = field(default_factory=time.monotonic)


class Supervisor:
    def __init__(
        self,
        ctx: StageContext,
        *,
        registry: ReplyMailboxes | None = None,
        only: list[str] | None = None,
        owner: str | None = None,
        lease_seconds: float = LEASE_SECONDS,
        interval: float = INTERVAL_SECONDS,
        stop: threading.Event | None = None,
    ) -> None:
        if interval * 2 >= lease_seconds:
            raise ValueError("lease_seconds must be more than twice the reconcile interval (renewals come every interval)")
        self.ctx = ctx
        self.registry = registry
        self.only = only
        self.owner = owner or new_owner_id()
        self.lease_seconds = lease_seconds
        self.interval = interval
        self.stop = stop or threading.Event()
        self.wake = threading.Event()
        self._static = [m for m in mailboxes_of(ctx.config) if _selected(m, only)]
        self._wanted: dict[str, Mailbox] = {m.name: m for m in self._static}
        self._watches: dict[str, _Watch] = {}
        self._stopping: list[_Watch] = []
        self._lock = threading.Lock()
        self.log = log.bind(owner=self.owner)

    def watching(self) -> dict[str, str]:
        """Mailbox name → settings fingerprint of every running poller of this supervisor."""
        with self._lock:
            return {name: w.fingerprint for name, w in self._watches.items() if w.thread.is_alive()}

    def poller(self, name: str) -> Poller | None:
        with self._lock:
            watch = self._watches.get(name)
        return watch.poller if watch is not None else None

    def run(self) -> None:
        """Reconcile until `stop` is set, then stop every poller and release the leases."""
        listener = self._start_listener()
        try:
            while not self.stop.is_set():
                try:
                    self.reconcile()
                except Exception as exc:  # Redis away: pollers hold on until their leases would expire
                    self.log.warning("inbox_reconcile_failed", error=f"{type(exc).__name__}: {str(exc)[:200]}")
                    self._expire_unrenewed()
                self.wake.wait(self.interval)
                self.wake.clear()
        finally:
            self.stop.set()
            self.shutdown()
            if listener is not None:
                listener.join(timeout=5)

    def reconcile(self) -> None:
        self._renew()
        self._finish_stopping()
        wanted = self._load_wanted()
        with self._lock:
            running = dict(self._watches)
        for name, watch in running.items():
            want = wanted.get(name)
            if want is None:
                self._stop_watch(name, "removed")
            elif settings_fingerprint(want) != watch.fingerprint:
                self._stop_watch(name, "settings_changed")
            elif not watch.thread.is_alive():
                self._stop_watch(name, "ended")
        stopping = {w.mailbox.name for w in self._stopping}
        for name, mailbox in wanted.items():
            if name in self._watches or name in stopping or self.stop.is_set():
                continue
            lease = MailboxLease(self.ctx.redis, name, self.owner, self.lease_seconds)
            if lease.hold():
                self._start_watch(mailbox, lease)

    def shutdown(self) -> None:
        with self._lock:
            watches = list(self._watches.values()) + self._stopping
            self._watches, self._stopping = {}, []
        for watch in watches:
            watch.poller.stop.set()
        deadline = time.monotonic() + JOIN_SECONDS
        for watch in watches:
            watch.thread.join(timeout=max(0.1, deadline - time.monotonic()))
            if watch.thread.is_alive():
                self.log.warning("inbox_watch_not_stopped", mailbox=watch.mailbox.name)
                continue  # its lease expires by itself; releasing it now could start a second watcher
            try:
                watch.lease.release()
            except Exception as exc:
                self.log.warning("inbox_lease_release_failed", mailbox=watch.mailbox.name, error=type(exc).__name__)
            self.log.info("inbox_watch_stopped", mailbox=watch.mailbox.name, reason="shutdown")

    def _load_wanted(self) -> dict[str, Mailbox]:
        """The TOML's mailboxes, then the registry's (a TOML mailbox wins a name both declare)."""
        if self.registry is None:
            return self._wanted
        try:
            found = [registry_mailbox(m) for m in self.registry.load()]
        except Exception as exc:  # the database away: keep watching what we knew
            self.log.warning("inbox_registry_unavailable", error=type(exc).__name__)
            return self._wanted
        wanted = {m.name: m for m in found if _selected(m, self.only)}
        wanted.update({m.name: m for m in self._static})
        self._wanted = wanted
        return wanted

    def _renew(self) -> None:
        with self._lock:
            running = list(self._watches.items())
            stopping = list(self._stopping)
        for name, watch in running:
            if watch.lease.hold():
                watch.renewed_at = time.monotonic()
            else:
                self._stop_watch(name, "lease_lost")
        for watch in stopping:  # still finishing a message: keep others out until it has ended
            watch.lease.hold()

    def _expire_unrenewed(self) -> None:
        """Without renewals for a lease time another host may hold the mailbox: stop ours."""
        with self._lock:
            expired = [n for n, w in self._watches.items() if time.monotonic() - w.renewed_at >= self.lease_seconds]
        for name in expired:
            self._stop_watch(name, "lease_unrenewed")

    def _start_watch(self, mailbox: Mailbox, lease: MailboxLease) -> None:
        poller = Poller(mailbox, self.ctx, threading.Event())
        thread = threading.Thread(target=self._run_poller, args=(poller,), name=f"inbox-{mailbox.name}", daemon=True)
        fingerprint = settings_fingerprint(mailbox)
        with self._lock:
            self._watches[mailbox.name] = _Watch(mailbox, fingerprint, lease, poller, thread)
        thread.start()
        self.log.info("inbox_watch_started", mailbox=mailbox.name, tenant=mailbox.tenant, settings=fingerprint)

    def _run_poller(self, poller: Poller) -> None:
        try:
            poller.run()
        except Exception:  # restarted by the next reconcile
            self.log.exception("inbox_poller_crashed", mailbox=poller.mailbox.name)

    def _stop_watch(self, name: str, reason: str) -> None:
        with self._lock:
            watch = self._watches.pop(name, None)
            if watch is None:
                return
            self._stopping.append(watch)
        watch.poller.stop.set()
        self.log.info("inbox_watch_stopping", mailbox=name, reason=reason)

    def _finish_stopping(self) -> None:
        """Release the leases of pollers whose threads have ended (not before: no overlap)."""
        with self._lock:
            ended = [w for w in self._stopping if not w.thread.is_alive()]
            self._stopping = [w for w in self._stopping if w.thread.is_alive()]
        for watch in ended:
            watch.lease.release()
            self.log.info("inbox_watch_stopped", mailbox=watch.mailbox.name)

    def _start_listener(self) -> threading.Thread | None:
        url = self.ctx.config.database.resolved_url()
        if self.registry is None or url is None:
            return None
        thread = threading.Thread(target=self._listen, args=(url,), name="inbox-registry-listener", daemon=True)
        thread.start()
        return thread

    def _listen(self, url: str) -> None:
        """Wake the reconcile loop as soon as a tenant changes (a missed note costs one interval)."""
        dsn = url.replace("postgresql+psycopg://", "postgresql://")
        while not self.stop.is_set():
            try:
                with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {REGISTRY_CHANNEL}")
                    while not self.stop.is_set():
                        for _ in conn.notifies(timeout=0.5):
                            self.wake.set()
            except Exception as exc:
                self.log.warning("inbox_registry_listener_reconnecting", error=type(exc).__name__)
                self.stop.wait(1.0)
