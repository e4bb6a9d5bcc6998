"""Watch IMAP mailboxes: read each new message once, turn it into events, resume where it left off.

One `Poller` per mailbox (an account's own `imap`, the shared `[inbox]`, or a tenant's
reply-tracking account), each on its own thread, started and stopped by `supervisor.Supervisor`.
It waits with IDLE where the server offers it (and `idle = true`), else sleeps
`poll_interval`; every error (connection dropped, server restarted, Redis away) closes the
session and reconnects with capped exponential back-off, resuming from the cursor in Redis.

The mailbox of an XOAUTH2 account logs in with SASL XOAUTH2 and the account's access token, taken from
the same shared cache (and single-flight refresh) as its SMTP sessions (`inbox.tokens`): a token the
server refuses gets one refresh and one retry; a revoked grant pauses the account as ``auth_failed``
(the tenant's ``account.reconnect_needed`` event, the registry row) and the poller waits for a reconnect.
"""

from __future__ import annotations

import imaplib
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import redis
import structlog

from pipeline.config import Config
from pipeline.config.inbox import ImapSettings
from pipeline.config.oauth import AuthMethod
from pipeline.config.resolve import ResolvedOAuth, resolve_oauth
from pipeline.context import StageContext, build_context
from pipeline.inbox.apply import apply_finding
from pipeline.inbox.classify import classify_message
from pipeline.inbox.cursor import CursorStore, message_digest
from pipeline.inbox.index import MessageIndex
from pipeline.inbox.session import ImapConfigError, ImapError, ImapSession
from pipeline.inbox.tokens import access_tokens
from pipeline.oauth.errors import OAuthError, TokenEndpointUnavailable
from pipeline.registry.grants import grant_keeper

log = structlog.get_logger("mailpipe.inbox")

RECONNECT_MIN = 1.0
RECONNECT_MAX = 60.0
ONCE_ATTEMPTS = 3
FORGET_EVERY = 3600.0
_RETRYABLE = (ImapError, imaplib.IMAP4.error, OSError, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


@dataclass(frozen=True)
class Mailbox:
    name: str  # "account:<ref>" or "shared:<name>": the Redis namespace of its cursor and its lease
    settings: ImapSettings
    tenant: str | None = None  # a tenant's own mailbox answers only that tenant's mail; None: any tenant's
    oauth: ResolvedOAuth | None = field(default=None, repr=False)  # an XOAUTH2 account's grant: log in with its tokens

    @property
    def account_ref(self) -> str:
        """The account reference (SMTP pools, token cache) of an ``account:`` mailbox."""
        return self.name.split(":", 1)[1]


def mailboxes_of(config: Config, only: list[str] | None = None) -> list[Mailbox]:
    """Configured mailboxes; `only` names some by `account:alpha`, `alpha` or `shared`."""
    found = [
        Mailbox(f"account:{a.name}", a.imap, oauth=resolve_oauth(a) if a.auth_method == AuthMethod.XOAUTH2 else None)
        for a in config.accounts
        if a.imap is not None
    ]
    if config.inbox is not None:
        found.append(Mailbox(f"shared:{config.inbox.name}", config.inbox))
    if only:
        found = [m for m in found if m.name in only or m.name.split(":", 1)[1] in only]
    return found


@dataclass
class PollStats:
    connects: int = 0
    syncs: int = 0
    errors: int = 0
    idle_wakeups: int = 0
    last_error: str | None = None
    counts: Counter[str] = field(default_factory=Counter)


class Poller:
    def __init__(self, mailbox: Mailbox, ctx: StageContext, stop: threading.Event | None = None) -> None:
        self.mailbox = mailbox
        self.settings = mailbox.settings
        self.ctx = ctx
        self.stop = stop or threading.Event()
        retention = (max(self.settings.backfill_days, 1) + 2) * 86400.0
        self.cursors = CursorStore(ctx.redis, mailbox.name, seen_retention=retention)
        self.index = MessageIndex(ctx.redis, ttl=ctx.config.retention.feedback_window, cold=ctx.cold)
        self.stats = PollStats()
        self._forgot_at = 0.0
        self.keeper = grant_keeper(ctx.registry.source) if mailbox.oauth is not None else None
        self.log = log.bind(mailbox=mailbox.name)

    def _open(self) -> ImapSession:
        grant = self.mailbox.oauth
        if grant is None:
            return ImapSession.open(self.settings)
        with access_tokens(self.ctx.config.redis_url, self.mailbox.account_ref, grant, self.keeper) as tokens:
            return ImapSession.open(self.settings, access_token=tokens)

    def run(self, once: bool = False) -> PollStats:
        """Poll until `stop` is set; with `once`, one complete pass (retrying a dropped connection)."""
        delay = RECONNECT_MIN
        attempts = 0
        while not self.stop.is_set():
            session: ImapSession | None = None
            try:
                session = self._open()
                self.stats.connects += 1
                self.log.info("inbox_connected", idle=session.can_idle and self.settings.idle, connects=self.stats.connects)
                delay = RECONNECT_MIN
                while not self.stop.is_set():
                    self.sync(session)
                    if once:
                        return self.stats
                    self._wait(session)
            except TokenEndpointUnavailable as exc:  # transient (before OAuthError): back off as for a dropped link
                self._failed(exc)
                attempts += 1
                if once and attempts >= ONCE_ATTEMPTS:
                    raise
            except (ImapConfigError, OAuthError) as exc:  # a revoked grant too: reported once, then wait for a reconnect
                self._failed(exc)
                if once:
                    raise
                delay = RECONNECT_MAX
            except _RETRYABLE as exc:
                self._failed(exc)
                attempts += 1
                if once and attempts >= ONCE_ATTEMPTS:
                    raise
            finally:
                if session is not None:
                    session.close()
            self.stop.wait(delay)
            delay = min(RECONNECT_MAX, delay * 2)
        return self.stats

    def _failed(self, exc: BaseException) -> None:
        self.stats.errors += 1
        self.stats.last_error = f"{type(exc).__name__}: {str(exc)[:200]}"
        self.log.warning("inbox_connection_failed", error=self.stats.last_error, errors=self.stats.errors)

    def _wait(self, session: ImapSession) -> None:
        if not (self.settings.idle and session.can_idle):
            self.stop.wait(self.settings.poll_interval)
            return
        folder = self.settings.folders[0]
        single = len(self.settings.folders) == 1
        if session.selected != folder:
            session.select(folder)
        if session.idle(self.settings.idle_timeout if single else self.settings.poll_interval, self.stop):
            self.stats.idle_wakeups += 1

    def sync(self, session: ImapSession) -> None:
        for folder in self.settings.folders:
            if self.stop.is_set():
                return
            self._sync_folder(session, folder)
        self.stats.syncs += 1
        if time.time() - self._forgot_at > FORGET_EVERY:
            self.cursors.forget_old()
            self._forgot_at = time.time()

    def _sync_folder(self, session: ImapSession, folder: str) -> None:
        state = session.select(folder)
        cursor = self.cursors.load(folder)
        if cursor.uidvalidity == state.uidvalidity:
            start = cursor.last_uid
        else:
            start = self._start_over(session, folder, cursor.uidvalidity, state.uidvalidity, state.uidnext)
        acted: list[int] = []
        for uid in session.uids_after(start):
            if self.stop.is_set():
                break
            if self._read(session, folder, state.uidvalidity, uid):
                acted.append(uid)
            if len(acted) >= self.settings.batch_size:
                self._dispose(session, acted)
                acted = []
        self._dispose(session, acted)

    def _start_over(self, session: ImapSession, folder: str, old: int | None, new: int, uidnext: int | None) -> int:
        """First sight of a folder, or its UIDVALIDITY changed: read the backfill window (digests
        of handled messages make a rescan repeat nothing); set the cursor just before it."""
        days = self.settings.backfill_days if old is None else max(self.settings.backfill_days, 1)
        window = session.uids_since(days) if days else []
        start = window[0] - 1 if window else (uidnext - 1 if uidnext else session.max_uid())
        self.cursors.reset(folder, new, start)
        self.log.info("inbox_cursor_reset", folder=folder, old_uidvalidity=old, uidvalidity=new, rescan=len(window))
        return start

    def _read(self, session: ImapSession, folder: str, uidvalidity: int, uid: int) -> bool:
        """Handle one message; True when it produced an event (so it may be moved or deleted)."""
        fetched = session.fetch(uid, self.settings.max_message_bytes)
        if fetched is None:
            self.cursors.done(folder, uidvalidity, uid, None, None)
            return False
        digest = message_digest(fetched.raw, fetched.size)
        if self.cursors.seen(digest):
            self.cursors.done(folder, uidvalidity, uid, digest, "already_seen")
            self.stats.counts["already_seen"] += 1
            return False
        tenants = [self.mailbox.tenant] if self.mailbox.tenant is not None else None
        domain = self.ctx.config.message_id_domain()
        finding = classify_message(fetched.raw, self.index, domain, truncated=fetched.truncated, tenants=tenants)
        applied = apply_finding(finding, self.ctx, self.mailbox.name)
        self.cursors.done(folder, uidvalidity, uid, digest, finding.counter)
        self.stats.counts[finding.counter] += 1
        ref = finding.ref
        self.log.info(
            "inbox_message",
            folder=folder,
            uid=uid,
            kind=finding.counter,
            applied=applied,
            event_id=ref.event_id if ref else None,
            tenant=ref.tenant if ref else None,
            bytes=fetched.size,
        )
        return applied

    def _dispose(self, session: ImapSession, uids: list[int]) -> None:
        if not uids or self.settings.read_only:
            return
        if self.settings.move_processed_to:
            session.move(uids, self.settings.move_processed_to)
        elif self.settings.delete_processed:
            session.delete(uids)


def watch_once(config: Config, ctx: StageContext | None = None, only: list[str] | None = None) -> dict[str, PollStats]:
    """One pass over every (or the named) mailbox, one after another."""
    ctx = ctx or build_context(config)
    return {mailbox.name: Poller(mailbox, ctx).run(once=True) for mailbox in mailboxes_of(config, only)}
