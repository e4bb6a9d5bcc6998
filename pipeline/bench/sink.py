"""Postfix's `smtp-sink`: a C SMTP server that accepts and discards mail, far faster than any client here."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from pipeline.errors import MailpipeError
from pipeline.smtp.netutil import free_port, wait_for_port

SINK_PATHS = ("/usr/sbin/smtp-sink", "/usr/lib/postfix/smtp-sink")
BACKLOG = 1024
MAX_CONNECTIONS = 4096


def find_smtp_sink() -> str | None:
    for candidate in SINK_PATHS:
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("smtp-sink")


class SmtpSink:
    """`smtp-sink [-u nobody] -m MAX 127.0.0.1:PORT BACKLOG` (as root it must drop to an unprivileged user)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self.process is None:
            raise MailpipeError("smtp-sink is not running")
        return self.process.pid

    def start(self) -> SmtpSink:
        binary = find_smtp_sink()
        if binary is None:
            raise MailpipeError("smtp-sink not found: install Debian's postfix package (ops/bootstrap.sh does, as root)")
        args = [binary]
        if os.geteuid() == 0:
            args += ["-u", "nobody"]
        # -m: smtp-sink serves 256 connections at once by default and leaves the rest hanging in the
        # kernel's queue; the tenants bench holds up to [tenants] max_smtp_sessions per worker.
        args += ["-m", str(MAX_CONNECTIONS), f"127.0.0.1:{self.port}", str(BACKLOG)]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=Path("/"))
        if not wait_for_port("127.0.0.1", self.port, timeout=10):
            self.stop()
            raise MailpipeError(f"smtp-sink did not listen on 127.0.0.1:{self.port}")
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
