"""One logged-in IMAP connection (stdlib imaplib) with the few commands the poller needs, IDLE included.

imaplib before Python 3.14 has no IDLE; it is done here on the connection's socket, under a tag
imaplib never sees, with a deadline on every read. imaplib's own reads go through a buffered file;
between commands that buffer is empty (every response was read to its tagged line), so reading the
socket directly during IDLE loses nothing, and imaplib resumes on a clean stream after DONE.
"""

from __future__ import annotations

import contextlib
import imaplib
import itertools
import re
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from pipeline.config.inbox import ImapSettings
from pipeline.errors import MailpipeError
from pipeline.plugin_host.presets import Security

MAX_LINE_BYTES = 64_000
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")
_UNSOLICITED_CHANGE = re.compile(rb"^\* \d+ (?:EXISTS|RECENT|EXPUNGE)\b", re.I)
_idle_tags = itertools.count(1)


class ImapError(MailpipeError):
    """The IMAP server refused something or the connection broke; the poller reconnects."""


class ImapConfigError(ImapError):
    """The settings cannot work (plaintext login refused, STARTTLS missing): no point retrying fast."""


class ImapAuthError(ImapConfigError):
    """The server refused the login (retrying fast would only earn longer auth penalties)."""


@dataclass(frozen=True)
class FolderState:
    uidvalidity: int
    uidnext: int | None
    exists: int


@dataclass(frozen=True)
class Fetched:
    uid: int
    raw: bytes
    size: int

    @property
    def truncated(self) -> bool:
        return len(self.raw) < self.size


def _tls_context(settings: ImapSettings) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=settings.ca_file)
    if not settings.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def quote_mailbox(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _capabilities(conn: imaplib.IMAP4) -> frozenset[str]:
    typ, data = conn.capability()
    if typ != "OK" or not data or not data[0]:
        return frozenset(str(c).upper() for c in conn.capabilities)
    return frozenset(word.upper() for word in data[0].decode("ascii", "replace").split())


class ImapSession:
    def __init__(self, conn: imaplib.IMAP4, settings: ImapSettings) -> None:
        self.conn = conn
        self.settings = settings
        self.capabilities = _capabilities(conn)
        self.selected: str | None = None

    @classmethod
    def open(cls, settings: ImapSettings, *, access_token: AccessTokens | None = None) -> ImapSession:
        """Connect, secure and log in; the password is resolved here and goes nowhere else.

        With ``access_token`` (an XOAUTH2 account) the login is SASL XOAUTH2 with the token it gives;
        a refusal that carries the server's JSON error asks it once more, naming the refused token.
        """
        if settings.security == Security.NONE and not settings.allow_plaintext_auth:
            raise ImapConfigError(f"{settings.host}: security = 'none' needs allow_plaintext_auth = true")
        conn: imaplib.IMAP4
        try:
            if settings.security == Security.TLS:
                context = _tls_context(settings)
                conn = imaplib.IMAP4_SSL(settings.host, settings.resolved_port, ssl_context=context, timeout=settings.timeout)
            else:
                conn = imaplib.IMAP4(settings.host, settings.resolved_port, timeout=settings.timeout)
        except (OSError, imaplib.IMAP4.error) as exc:
            raise ImapError(f"{settings.host}:{settings.resolved_port}: cannot connect ({exc})") from None
        try:
            if settings.security == Security.STARTTLS:
                if "STARTTLS" not in {str(c).upper() for c in conn.capabilities}:
                    raise ImapConfigError(f"{settings.host}: the server does not offer STARTTLS")
                conn.starttls(ssl_context=_tls_context(settings))
            if access_token is not None:
                _login_xoauth2(conn, settings.username, access_token)
            else:
                if settings.password is None:
                    raise ImapConfigError(f"{settings.host}: no IMAP password (and no XOAUTH2 token) for {settings.username}")
                conn.login(settings.username, settings.password.resolve().get_secret_value())
        except imaplib.IMAP4.error as exc:
            _close_quietly(conn)
            raise ImapAuthError(f"{settings.host}: login as {settings.username} failed ({_short(exc)})") from None
        except OSError as exc:
            _close_quietly(conn)
            raise ImapError(f"{settings.host}: TLS or login failed ({_short(exc)})") from None
        except BaseException:
            _close_quietly(conn)
            raise
        return cls(conn, settings)

    @property
    def can_idle(self) -> bool:
        return "IDLE" in self.capabilities

    def select(self, folder: str) -> FolderState:
        """Open a folder; read-only (EXAMINE) unless processed mail is to be moved or deleted."""
        typ, data = self.conn.select(quote_mailbox(folder), readonly=self.settings.read_only)
        if typ != "OK":
            raise ImapError(f"cannot open folder {folder!r}: {_text(data)}")
        self.selected = folder
        validity = self._number("UIDVALIDITY")
        if validity is None:
            raise ImapError(f"folder {folder!r}: the server sent no UIDVALIDITY")
        exists = int(data[0]) if data and data[0] and data[0].isdigit() else 0
        return FolderState(validity, self._number("UIDNEXT"), exists)

    def _number(self, name: str) -> int | None:
        _, values = self.conn.response(name)
        for value in values or []:
            if isinstance(value, bytes) and value.strip().isdigit():
                return int(value)
        return None

    def uids_after(self, last_uid: int) -> list[int]:
        """UIDs above `last_uid`, ascending. (`n:*` always matches the last message: filtered out.)"""
        typ, data = self.conn.uid("SEARCH", f"UID {last_uid + 1}:*")
        return sorted(uid for uid in self._uids(typ, data) if uid > last_uid)

    def uids_since(self, days: int) -> list[int]:
        since = time.strftime("%d-%b-%Y", time.gmtime(time.time() - days * 86400))
        typ, data = self.conn.uid("SEARCH", f"SINCE {since}")
        return sorted(self._uids(typ, data))

    def max_uid(self) -> int:
        typ, data = self.conn.uid("SEARCH", "ALL")
        return max(self._uids(typ, data), default=0)

    @staticmethod
    def _uids(typ: str, data: list[bytes | None]) -> list[int]:
        if typ != "OK":
            raise ImapError(f"UID SEARCH failed: {_text(data)}")
        return [int(word) for chunk in data if chunk for word in chunk.split() if word.isdigit()]

    def fetch(self, uid: int, limit: int) -> Fetched | None:
        """The first `limit` bytes of a message without setting \\Seen; None if it is gone."""
        typ, data = self.conn.uid("FETCH", str(uid), f"(RFC822.SIZE BODY.PEEK[]<0.{limit}>)")
        if typ != "OK":
            raise ImapError(f"UID FETCH {uid} failed: {_text(data)}")
        raw, meta = b"", b""
        for item in data:
            if isinstance(item, tuple):
                meta += item[0]
                raw = item[1] if len(item[1]) > len(raw) else raw
            elif isinstance(item, bytes):
                meta += item
        found = _SIZE.search(meta)
        if not raw and not found:
            return None
        return Fetched(uid, raw[:limit], int(found.group(1)) if found else len(raw))

    def move(self, uids: list[int], target: str) -> None:
        uid_set = ",".join(map(str, uids))
        if "MOVE" in self.capabilities:
            self._ok(self.conn.uid("MOVE", uid_set, quote_mailbox(target)), "UID MOVE")
            return
        self._ok(self.conn.uid("COPY", uid_set, quote_mailbox(target)), "UID COPY")
        self.delete(uids)

    def delete(self, uids: list[int]) -> None:
        """Flag deleted; expunge only these UIDs (UIDPLUS). Without UIDPLUS the flag stays for the
        mailbox owner to expunge: a plain EXPUNGE would also remove mail someone else flagged."""
        uid_set = ",".join(map(str, uids))
        self._ok(self.conn.uid("STORE", uid_set, "+FLAGS.SILENT", r"(\Deleted)"), "UID STORE")
        if "UIDPLUS" in self.capabilities:
            self._ok(self.conn.uid("EXPUNGE", uid_set), "UID EXPUNGE")

    @staticmethod
    def _ok(result: tuple[str, list[bytes | None]], what: str) -> None:
        if result[0] != "OK":
            raise ImapError(f"{what} failed: {_text(result[1])}")

    def idle(self, timeout: float, stop: threading.Event) -> bool:
        """RFC 2177 IDLE on the selected folder until it changes, `timeout` passes or `stop` is set.

        True when the server announced new (or removed) mail.
        """
        sock = self.conn.sock
        tag = f"MPI{next(_idle_tags)}".encode()
        reader = _LineReader(sock)
        self.conn.send(tag + b" IDLE\r\n")
        first = reader.readline(time.monotonic() + self.settings.timeout)
        if first is None or not first.startswith(b"+"):
            raise ImapError(f"IDLE refused: {_short_bytes(first)}")
        changed = False
        deadline = time.monotonic() + timeout
        while not changed and not stop.is_set() and time.monotonic() < deadline:
            line = reader.readline(min(deadline, time.monotonic() + 1.0))
            if line is None:
                continue
            if line.upper().startswith(b"* BYE"):
                raise ImapError(f"server closed the connection: {_short_bytes(line)}")
            changed = bool(_UNSOLICITED_CHANGE.match(line))
        self.conn.send(b"DONE\r\n")
        end = time.monotonic() + self.settings.timeout
        while True:
            line = reader.readline(end)
            if line is None:
                raise ImapError("no answer to IDLE DONE")
            if line.startswith(tag + b" "):
                if not line[len(tag) + 1 :].upper().startswith(b"OK"):
                    raise ImapError(f"IDLE ended badly: {_short_bytes(line)}")
                return changed
            if _UNSOLICITED_CHANGE.match(line):
                changed = True

    def close(self) -> None:
        _close_quietly(self.conn)


class _LineReader:
    """CRLF lines from a (TLS) socket with a deadline per line; None when the deadline passes."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def readline(self, until: float) -> bytes | None:
        while b"\n" not in self.buffer:
            if len(self.buffer) > MAX_LINE_BYTES:
                raise ImapError("IMAP server sent an over-long line")
            remaining = until - time.monotonic()
            if remaining <= 0:
                return None
            pending = self.sock.pending() if isinstance(self.sock, ssl.SSLSocket) else 0
            if not pending and not select.select([self.sock], [], [], remaining)[0]:
                return None
            try:
                chunk = self.sock.recv(65536)
            except (TimeoutError, ssl.SSLWantReadError):
                continue
            if not chunk:
                raise ImapError("the IMAP server closed the connection")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line + b"\n"


# Called with None for a token, or with the token the server just refused (so a fresh one is fetched).
AccessTokens = Callable[[str | None], str]


class _XOAuth2:
    """imaplib's authobject for XOAUTH2: the initial response, then an empty reply to the server's JSON error."""

    def __init__(self, username: str, token: str) -> None:
        self.payload = f"user={username}\x01auth=Bearer {token}\x01\x01".encode()
        self.challenge: bytes | None = None

    def __call__(self, challenge: bytes) -> bytes:
        if self.payload:
            payload, self.payload = self.payload, b""
            return payload
        self.challenge = challenge  # {"status":"401",…}: the token is no longer good
        return b""


def _login_xoauth2(conn: imaplib.IMAP4, username: str, tokens: AccessTokens) -> None:
    token = tokens(None)
    attempt = _XOAuth2(username, token)
    try:
        conn.authenticate("XOAUTH2", attempt)
    except imaplib.IMAP4.error:
        if not attempt.challenge:
            raise
        conn.authenticate("XOAUTH2", _XOAuth2(username, tokens(token)))


def _close_quietly(conn: imaplib.IMAP4) -> None:
    """LOGOUT, never CLOSE: CLOSE would expunge every message flagged \\Deleted, ours or not."""
    with contextlib.suppress(imaplib.IMAP4.error, OSError):
        conn.logout()


def _text(data: list[bytes | None] | None) -> str:
    return _short_bytes(b" ".join(d for d in data or [] if isinstance(d, bytes)))


def _short_bytes(value: bytes | None) -> str:
    return (value or b"").decode("utf-8", "replace").strip()[:200]


def _short(exc: BaseException) -> str:
    return str(exc)[:200]
