"""Ending a server the tests started in its own session (``start_new_session=True``)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process and every child of its group, and reap it: for the end of a test, whose server
    state is thrown away anyway (a graceful Dovecot stop waits ~2 s for its log process to drain)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(5)
