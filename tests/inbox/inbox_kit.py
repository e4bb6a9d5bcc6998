"""A real IMAP server for the inbox tests: Dovecot (Debian's dovecot-imapd) with a private config.

Each test gets its own Dovecot: own base_dir, state and log in a temporary directory, a
passwd-file with one user, maildir storage, plain IMAP (STARTTLS offered) and implicit TLS on
free ports of 127.0.0.1. Mail is delivered with IMAP APPEND. Skipped when dovecot is missing (a
failure under CI=true, see tests/conftest.py); a Dovecot that does not start is a failure with its log.
"""

from __future__ import annotations

import imaplib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from process_group import kill_group

from pipeline.smtp.devsmtp import DevSMTPServer, TLSFiles
from pipeline.smtp.netutil import free_port, wait_for_port

DOVECOT = shutil.which("dovecot") or ("/usr/sbin/dovecot" if os.path.exists("/usr/sbin/dovecot") else None)
DOVEADM = shutil.which("doveadm") or ("/usr/bin/doveadm" if os.path.exists("/usr/bin/doveadm") else None)
IMAP_USER = "bounces"
IMAP_PASSWORD = "imap-secret-pw-9"
START_TIMEOUT = 60.0  # seconds; generous because the machine is shared, not because Dovecot is slow


def _account(name: str) -> tuple[int, int] | None:
    import pwd

    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    return entry.pw_uid, entry.pw_gid


class Dovecot:
    def __init__(self, tls: TLSFiles) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="mailpipe-dovecot-", dir="/tmp"))
        self.root.chmod(0o755)
        self.tls = tls
        self.port = free_port()
        self.tls_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.conf = self.root / "dovecot.conf"
        self._write_config()

    def _write_config(self) -> None:
        mail_owner = _account("nobody") or (65534, 65534)
        mail = self.root / "mail"
        mail.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            os.chown(mail, *mail_owner)
        (self.root / "users").write_text(f"{IMAP_USER}:{{PLAIN}}{IMAP_PASSWORD}::::::\n")
        internal = "dovecot" if _account("dovecot") else "nobody"
        login = "dovenull" if _account("dovenull") else "nobody"
        self.conf.write_text(f"""
base_dir = {self.root}/run
state_dir = {self.root}/state
log_path = {self.root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{self.tls.cert_file}
ssl_key = <{self.tls.key_file}
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {internal}
default_login_user = {login}
first_valid_uid = 1
# a refused login answers at once (default: after 2 s, against brute force; the client sees the same NO)
auth_failure_delay = 0
mail_uid = {mail_owner[0]}
mail_gid = {mail_owner[1]}
mail_location = maildir:{mail}/%u
namespace inbox {{
  inbox = yes
  separator = /
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.root}/users
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
    address = 127.0.0.1
    port = {self.tls_port}
    ssl = yes
  }}
}}
""")

    def start(self) -> Dovecot:
        assert DOVECOT is not None
        with open(self.root / "stderr.log", "ab") as stderr:
            self.process = subprocess.Popen(
                [DOVECOT, "-F", "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True
            )
        ready = wait_for_port("127.0.0.1", self.port, START_TIMEOUT) and wait_for_port("127.0.0.1", self.tls_port, START_TIMEOUT)
        if not ready:
            exited = self.process.poll()
            self.stop()
            state = f"exited with {exited}" if exited is not None else f"not listening after {START_TIMEOUT:g} s"
            raise RuntimeError(f"dovecot did not start ({state}); log tail:\n{self.log()}")
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

    def restart(self) -> None:
        self.stop()
        self.start()

    def kick(self) -> str:
        """Disconnect every IMAP session of the user (the server kills its imap processes)."""
        assert DOVEADM is not None
        done = subprocess.run([DOVEADM, "-c", str(self.conf), "kick", IMAP_USER], capture_output=True, text=True, timeout=15)
        return done.stdout + done.stderr

    def sessions(self) -> int:
        assert DOVEADM is not None
        done = subprocess.run([DOVEADM, "-c", str(self.conf), "who", "-1"], capture_output=True, text=True, timeout=15)
        return sum(1 for line in done.stdout.splitlines() if line.startswith(IMAP_USER))

    def log(self) -> str:
        logs = (self.root / "dovecot.log", self.root / "stderr.log")
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in logs if p.exists())

    def client(self) -> imaplib.IMAP4:
        conn = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        conn.login(IMAP_USER, IMAP_PASSWORD)
        return conn

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        conn = self.client()
        try:
            if folder != "INBOX":
                conn.create(f'"{folder}"')
            typ, data = conn.append(f'"{folder}"', None, None, raw)
            assert typ == "OK", data
        finally:
            conn.logout()

    def messages(self, folder: str = "INBOX") -> list[tuple[int, str]]:
        """(uid, flags) of every message in a folder."""
        conn = self.client()
        try:
            typ, _ = conn.select(f'"{folder}"', readonly=True)
            if typ != "OK":
                return []
            typ, data = conn.uid("FETCH", "1:*", "(FLAGS)")
            out = []
            for item in data:
                if isinstance(item, bytes) and b"UID" in item:
                    text = item.decode()
                    uid = int(text.split("UID ")[1].split()[0].rstrip(")"))
                    out.append((uid, text.split("FLAGS (")[1].split(")")[0]))
            return out
        finally:
            conn.logout()

    def cleanup(self) -> None:
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def dovecot(tls_files: TLSFiles) -> Iterator[Dovecot]:
    if DOVECOT is None or DOVEADM is None:
        pytest.skip("dovecot is not installed (apt-get install dovecot-imapd)")
    server = Dovecot(tls_files)
    try:
        server.start()
    except RuntimeError as exc:
        server.cleanup()
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.cleanup()


@pytest.fixture
def imap_config(
    write_config: Callable[..., Path],
    dovecot: Dovecot,
    smtp_server: DevSMTPServer,
    tls_files: TLSFiles,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., Path]:
    """Write a config whose account alpha watches the Dovecot mailbox; keyword args are imap settings.

    Defaults: plain IMAP on the fixture's port (allow_plaintext_auth), fast polling, IDLE on.
    """
    monkeypatch.setenv("TEST_IMAP_PW", IMAP_PASSWORD)

    def write(**imap: object) -> Path:
        settings: dict[str, object] = {
            "host": "127.0.0.1",
            "port": dovecot.port,
            "security": "none",
            "allow_plaintext_auth": True,
            "username": IMAP_USER,
            "password": "env:TEST_IMAP_PW",
            "poll_interval": 0.2,
            "timeout": 5,
        }
        settings.update(imap)
        inline = ", ".join(f"{key} = {_toml(value)}" for key, value in settings.items())
        account = f"""
[[accounts]]
name = "alpha"
host = "127.0.0.1"
port = {smtp_server.ports["starttls"]}
security = "starttls"
username = "alpha"
password = "env:TEST_PW_ALPHA"
from_email = "alpha@sender.example"
ca_file = "{tls_files.ca_file}"
imap = {{ {inline} }}
"""
        extra = '[send]\nmessage_id_domain = "mail.sender.example"\n'
        return write_config(accounts=account, routes="", default="alpha", extra=extra)

    return write


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
