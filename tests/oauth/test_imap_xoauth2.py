"""IMAP XOAUTH2 (reply tracking) against a real Dovecot whose oauth2 passdb asks the fake provider's introspection endpoint.

A private Dovecot per test (own base_dir, state, log and ports), as tests/inbox does, but with XOAUTH2 as its only
mechanism. Skipped when dovecot is missing (a failure under CI=true, see tests/conftest.py).
"""

from __future__ import annotations

import imaplib
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from connect_testbed import MAILBOX
from eventually import eventually
from fake_provider import FakeProvider
from process_group import kill_group
from xoauth2_smtp import XOAuth2SMTP

from pipeline.config import load_config
from pipeline.config.inbox import ImapSettings
from pipeline.context import StageContext, build_context
from pipeline.inbox.index import MessageIndex
from pipeline.inbox.poller import Poller, mailboxes_of
from pipeline.inbox.session import ImapAuthError, ImapSession
from pipeline.models import LeadEvent
from pipeline.oauth.errors import RECONNECT_HINT, TokenEndpointUnavailable
from pipeline.plugin_host.presets import Security
from pipeline.smtp.devsmtp import TLSFiles
from pipeline.smtp.mime import message_id_for
from pipeline.smtp.netutil import free_port, wait_for_port
from pipeline.state import keys
from pipeline.state.status import Transition

DOVECOT = shutil.which("dovecot") or ("/usr/sbin/dovecot" if os.path.exists("/usr/sbin/dovecot") else None)
START_TIMEOUT = 60.0  # generous: the machine is shared


def _ids(name: str) -> tuple[int, int] | None:
    import pwd

    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    return entry.pw_uid, entry.pw_gid


class OAuthDovecot:
    def __init__(self, tls: TLSFiles, provider: FakeProvider) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="mailpipe-dovecot-oauth-", dir="/tmp"))
        self.root.chmod(0o755)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        owner = _ids("nobody") or (65534, 65534)
        mail = self.root / "mail"
        mail.mkdir()
        if os.geteuid() == 0:
            os.chown(mail, *owner)
        oauth = self.root / "dovecot-oauth2.conf.ext"
        oauth.write_text(
            f"introspection_mode = post\nintrospection_url = {provider.introspect_url}\n"
            "force_introspection = yes\nusername_attribute = username\nactive_attribute = active\nactive_value = true\n"
        )
        self.conf = self.root / "dovecot.conf"
        self.conf.write_text(f"""
base_dir = {self.root}/run
state_dir = {self.root}/state
log_path = {self.root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{tls.cert_file}
ssl_key = <{tls.key_file}
disable_plaintext_auth = no
auth_mechanisms = xoauth2 oauthbearer
default_internal_user = {"dovecot" if _ids("dovecot") else "nobody"}
default_login_user = {"dovenull" if _ids("dovenull") else "nobody"}
first_valid_uid = 1
# a refused login answers at once (default: after 2 s, against brute force; the client sees the same NO)
auth_failure_delay = 0
mail_uid = {owner[0]}
mail_gid = {owner[1]}
mail_location = maildir:{mail}/%u
namespace inbox {{
  inbox = yes
  separator = /
}}
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {oauth}
}}
userdb {{
  driver = static
  args = home={mail}/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
""")

    def start(self) -> OAuthDovecot:
        assert DOVECOT is not None
        with open(self.root / "stderr.log", "ab") as stderr:
            self.process = subprocess.Popen(
                [DOVECOT, "-F", "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True
            )
        if not wait_for_port("127.0.0.1", self.port, START_TIMEOUT):
            exited = self.process.poll()
            self.stop()
            raise RuntimeError(f"dovecot did not start (exit {exited}); log tail:\n{self.log()}")
        return self

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self.process = None

    def kill(self) -> None:
        """The end of a test (``stop()`` is the graceful stop, for a test that restarts the server)."""
        if self.process is not None:
            kill_group(self.process)
            self.process = None

    def log(self) -> str:
        parts = [
            p.read_text(errors="replace")[-3000:] for p in (self.root / "dovecot.log", self.root / "stderr.log") if p.exists()
        ]
        return "\n".join(parts)


@pytest.fixture
def dovecot(tls_files: TLSFiles, provider: FakeProvider) -> Iterator[OAuthDovecot]:
    if DOVECOT is None:
        pytest.skip("dovecot is not installed (apt-get install dovecot-imapd)")
    server = OAuthDovecot(tls_files, provider).start()
    yield server
    server.kill()
    shutil.rmtree(server.root, ignore_errors=True)


def settings(dovecot: OAuthDovecot, tls_files: TLSFiles) -> ImapSettings:
    return ImapSettings(
        host="127.0.0.1",
        port=dovecot.port,
        security=Security.STARTTLS,
        username=MAILBOX,
        ca_file=tls_files.ca_file,
        timeout=10,
    )


def issue(provider: FakeProvider) -> str:
    """A valid access token for the mailbox, as the token endpoint would hand it out."""
    return str(provider._issue(MAILBOX)["access_token"])


def test_imap_logs_in_with_xoauth2_and_selects_the_inbox(
    dovecot: OAuthDovecot, provider: FakeProvider, tls_files: TLSFiles
) -> None:
    asked: list[str | None] = []

    def tokens(refused: str | None) -> str:
        asked.append(refused)
        return issue(provider)

    session = ImapSession.open(settings(dovecot, tls_files), access_token=tokens)
    try:
        assert session.select("INBOX").exists == 0
    finally:
        session.close()
    assert asked == [None]


def test_an_expired_token_gets_one_fresh_token_and_one_retry(
    dovecot: OAuthDovecot, provider: FakeProvider, tls_files: TLSFiles
) -> None:
    stale = issue(provider)
    provider.expire_all()
    asked: list[str | None] = []

    def tokens(refused: str | None) -> str:
        asked.append(refused)
        return stale if refused is None else issue(provider)

    session = ImapSession.open(settings(dovecot, tls_files), access_token=tokens)
    session.close()
    assert asked == [None, stale]


def test_a_token_refused_twice_is_an_auth_error_naming_the_user_not_the_token(
    dovecot: OAuthDovecot, provider: FakeProvider, tls_files: TLSFiles
) -> None:
    with pytest.raises(ImapAuthError) as refused:
        ImapSession.open(settings(dovecot, tls_files), access_token=lambda _: "at-not-issued-by-anyone")
    assert MAILBOX in str(refused.value) and "at-not-issued" not in str(refused.value)


# --- reply tracking: the poller logs in with the account's own token (shared cache, refresh, revocation) ---


def reply(in_reply_to: str) -> bytes:
    return (
        f"From: Lead <lead@customer.example>\r\nTo: {MAILBOX}\r\nSubject: Re: Hello\r\n"
        f"Date: Tue, 07 Jan 2025 10:15:00 +0100\r\nMessage-ID: <reply-{time.time_ns()}@customer.example>\r\n"
        f"In-Reply-To: {in_reply_to}\r\nReferences: {in_reply_to}\r\nContent-Type: text/plain\r\n\r\nYes, let's talk.\r\n"
    ).encode()


def append_as_owner(dovecot: OAuthDovecot, provider: FakeProvider, tls_files: TLSFiles, raw: bytes) -> None:
    """Deliver ``raw`` into the mailbox (IMAP APPEND, logged in as its owner with XOAUTH2)."""
    session = ImapSession.open(settings(dovecot, tls_files), access_token=lambda _: issue(provider))
    try:
        typ, _ = session.conn.append("INBOX", "", imaplib.Time2Internaldate(time.time()), raw)
        assert typ == "OK"
    finally:
        session.close()


def inbox_toml(dovecot: OAuthDovecot, tls_files: TLSFiles) -> str:
    imap = (
        f'imap = {{ host = "127.0.0.1", port = {dovecot.port}, security = "starttls", username = "{MAILBOX}", '
        f'ca_file = "{tls_files.ca_file}", poll_interval = 0.2, timeout = 10 }}\n'  # no password: XOAUTH2 only
    )
    return imap


def sent_original(ctx: StageContext, tenant: str, event_id: str) -> str:
    """An event accepted and ``sent`` (as the pipeline would leave it); its Message-ID, indexed for replies."""
    assert all(
        ctx.status.accept([LeadEvent(event_id=event_id, tenant=tenant, to="lead@customer.example", subject="Hello", text="Hi")])
    )
    ctx.status.record([Transition(tenant, event_id, "sent", {"stage": "classify"})])
    message_id = message_id_for(tenant, event_id, ctx.config.message_id_domain())
    MessageIndex(ctx.redis).remember([(tenant, message_id, event_id)])
    return message_id


@pytest.fixture
def toml_inbox(
    write_oauth_config: Callable[..., Path],
    dovecot: OAuthDovecot,
    tls_files: TLSFiles,
    provider: FakeProvider,
    xoauth2_smtp: XOAuth2SMTP,
    monkeypatch: pytest.MonkeyPatch,
) -> StageContext:
    """A TOML deployment whose XOAUTH2 account google-a tracks replies in the Dovecot mailbox."""
    monkeypatch.setenv("TEST_PW_OAUTH_IMAP_UNUSED", "unused")
    path = write_oauth_config()
    text = path.read_text().replace(
        'oauth.provider = "generic"', 'oauth.provider = "generic"\n' + inbox_toml(dovecot, tls_files), 1
    )
    path.write_text(text)
    return build_context(load_config(path))


def test_the_reply_poller_of_an_xoauth2_account_logs_in_with_its_token_and_finds_the_reply(
    toml_inbox: StageContext, dovecot: OAuthDovecot, provider: FakeProvider, tls_files: TLSFiles, redis_client: redis.Redis
) -> None:
    ctx = toml_inbox
    message_id = sent_original(ctx, "default", "ev-1")
    append_as_owner(dovecot, provider, tls_files, reply(message_id))
    (mailbox,) = mailboxes_of(ctx.config)
    assert mailbox.name == "account:google-a" and mailbox.oauth is not None

    stats = Poller(mailbox, ctx).run(once=True)

    assert stats.counts == {"reply": 1}
    assert ctx.status.get("default", "ev-1").state == "replied"  # type: ignore[union-attr]
    assert provider.refreshes == 1  # the poller's token came from the token endpoint once ...
    assert redis_client.get("mailpipe:default:oauth:google-a:token") is not None  # ... into the cache SMTP shares
    assert Poller(mailbox, ctx).run(once=True).counts == {}  # a second pass: cached token, nothing read twice
    assert provider.refreshes == 1


def test_a_token_the_imap_server_refuses_gets_one_refresh_and_the_poller_carries_on(
    toml_inbox: StageContext, dovecot: OAuthDovecot, provider: FakeProvider, tls_files: TLSFiles
) -> None:
    ctx = toml_inbox
    (mailbox,) = mailboxes_of(ctx.config)
    Poller(mailbox, ctx).run(once=True)
    provider.expire_all()  # the provider ended the cached token early: Dovecot refuses it
    message_id = sent_original(ctx, "default", "ev-2")
    append_as_owner(dovecot, provider, tls_files, reply(message_id))

    stats = Poller(mailbox, ctx).run(once=True)

    assert stats.counts == {"reply": 1} and stats.errors == 0
    assert provider.refreshes == 2


def test_a_revoked_grant_pauses_the_account_and_the_watcher_waits_instead_of_crashing(
    toml_inbox: StageContext, provider: FakeProvider, oauth_env: str, redis_client: redis.Redis
) -> None:
    ctx = toml_inbox
    provider.revoke(oauth_env)
    (mailbox,) = mailboxes_of(ctx.config)
    poller = Poller(mailbox, ctx, threading.Event())
    thread = threading.Thread(target=poller.run, daemon=True)
    thread.start()
    try:
        assert eventually(lambda: poller.stats.errors, lambda errors: errors >= 1, timeout=20) >= 1
        time.sleep(0.5)
        assert thread.is_alive()  # waiting for a reconnect, not crashed
        assert "invalid_grant" in (poller.stats.last_error or "")
        assert poller.stats.connects == 0 and provider.refreshes == 1
    finally:
        poller.stop.set()
        thread.join(20)
    assert not thread.is_alive()
    state = {k.decode(): v.decode() for k, v in redis_client.hgetall(keys.account_state("default", "google-a")).items()}
    assert state["health"] == "auth_failed" and state["paused"] == "1" and RECONNECT_HINT in state["reason"]
    reconnect = [
        f for _, f in redis_client.xrange(keys.events_stream("default")) if f.get(b"type") == b"account.reconnect_needed"
    ]
    assert len(reconnect) == 1


def test_a_token_endpoint_that_is_down_is_retried_by_the_poller_and_pauses_nothing(
    toml_inbox: StageContext, provider: FakeProvider, redis_client: redis.Redis
) -> None:
    ctx = toml_inbox
    provider.down = True
    (mailbox,) = mailboxes_of(ctx.config)
    with pytest.raises(TokenEndpointUnavailable):
        Poller(mailbox, ctx).run(once=True)  # once: three attempts, then the error
    assert not redis_client.exists(keys.account_state("default", "google-a"))
    provider.down = False
    redis_client.delete(*redis_client.keys("mailpipe:default:oauth:google-a:failed:*"))
    assert Poller(mailbox, ctx).run(once=True).connects == 1
