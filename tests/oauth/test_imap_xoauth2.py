"""IMAP XOAUTH2 (reply tracking) against a real Dovecot whose oauth2 passdb asks the fake provider's introspection endpoint.

A private Dovecot per test (own base_dir, state, log and ports), as tests/inbox does, but with XOAUTH2 as its only
mechanism. Skipped when dovecot is missing (a failure under CI=true, see tests/conftest.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from connect_testbed import MAILBOX
from fake_provider import FakeProvider

from pipeline.config.inbox import ImapSettings
from pipeline.inbox.session import ImapAuthError, ImapSession
from pipeline.plugin_host.presets import Security
from pipeline.secrets import SecretRef
from pipeline.smtp.devsmtp import TLSFiles
from pipeline.smtp.netutil import free_port, wait_for_port

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
}}
""")

    def start(self) -> OAuthDovecot:
        assert DOVECOT is not None
        with open(self.root / "stderr.log", "ab") as stderr:
            self.process = subprocess.Popen([DOVECOT, "-F", "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=stderr)
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
    server.stop()
    shutil.rmtree(server.root, ignore_errors=True)


def settings(dovecot: OAuthDovecot, tls_files: TLSFiles) -> ImapSettings:
    return ImapSettings(
        host="127.0.0.1",
        port=dovecot.port,
        security=Security.STARTTLS,
        username=MAILBOX,
        password=SecretRef("unused-for-xoauth2"),
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
