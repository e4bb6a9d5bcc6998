"""Start and stop `mailpipe worker` processes (demo, tests, benchmarks)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO

# The folder holding the installed ``pipeline`` and ``plugins`` packages (site-packages, or the
# checkout for an editable install).
INSTALLED_ROOT = Path(__file__).resolve().parents[2]


def python_command(env: dict[str, str]) -> list[str]:
    """This interpreter in safe-path mode, for a subprocess of ours: the working directory never shadows
    ``pipeline`` or ``plugins`` (an operator's own ``plugins/`` folder, say).

    ``-P`` covers the child; ``PYTHONSAFEPATH=1`` in ``env`` covers what it starts in turn (Dramatiq's
    worker processes, ``python -m`` calls of its own).
    """
    env["PYTHONSAFEPATH"] = "1"
    return [sys.executable, "-P"]


class WorkerProcess:
    """One `mailpipe worker` command: a Dramatiq parent with its worker processes."""

    def __init__(
        self,
        config_path: Path,
        *,
        processes: int = 1,
        threads: int = 4,
        queues: str = "",
        env: dict[str, str] | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.config_path = config_path
        self.processes = processes
        self.threads = threads
        self.queues = queues
        self.env = env or {}
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self._log: BinaryIO | None = None

    def start(self) -> WorkerProcess:
        env = {**os.environ, **self.env, "MAILPIPE_CONFIG": str(self.config_path), "MAILPIPE_LOG_FORMAT": "json"}
        args = [*python_command(env), "-m", "pipeline.cli", "worker", "-p", str(self.processes), "-t", str(self.threads)]
        if self.queues:
            args += ["-Q", self.queues]
        self._log = open(self.log_path, "ab") if self.log_path else None  # noqa: SIM115
        self.process = subprocess.Popen(
            args,
            env=env,
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT if self._log else subprocess.DEVNULL,
            start_new_session=True,
        )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def children(self) -> list[int]:
        """PIDs of the Dramatiq worker processes under this command."""
        try:
            out = subprocess.run(["pgrep", "-P", str(self.pid)], capture_output=True, text=True, check=False).stdout
        except FileNotFoundError:
            return []
        return [int(p) for p in out.split()]

    def stop(self, timeout: float = 20.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            try:
                self.process.send_signal(signal.SIGTERM)  # dramatiq forwards it to its workers
                self.process.wait(timeout=timeout)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                self.kill()
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):  # leftovers of the group (a worker that outlived its parent)
                os.killpg(self.process.pid, signal.SIGKILL)
        if self._log:
            self._log.close()
            self._log = None
        self.process = None

    def kill(self) -> None:
        """SIGKILL the whole process group: a crash, not a shutdown."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


class ServeProcess:
    """One `mailpipe serve` command (the HTTP API), started and stopped like the workers."""

    def __init__(self, config_path: Path, *, env: dict[str, str] | None = None, log_path: Path | None = None) -> None:
        self.config_path = config_path
        self.env = env or {}
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self._log: BinaryIO | None = None

    def start(self, port: int, timeout: float = 30.0) -> ServeProcess:
        """Start it and wait until `/healthz` answers on `port`."""
        env = {**os.environ, **self.env, "MAILPIPE_CONFIG": str(self.config_path), "MAILPIPE_LOG_FORMAT": "json"}
        args = [*python_command(env), "-m", "pipeline.cli", "serve", "--port", str(port)]
        self._log = open(self.log_path, "ab") if self.log_path else None  # noqa: SIM115
        self.process = subprocess.Popen(
            args,
            env=env,
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT if self._log else subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mailpipe serve exited with {self.process.returncode} (log: {self.log_path})")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                    return self
            except urllib.error.HTTPError:
                return self  # it answers (unhealthy until workers run, which is fine here)
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"mailpipe serve did not answer on port {port} within {timeout:.0f}s (log: {self.log_path})")

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        if self._log:
            self._log.close()
            self._log = None
        self.process = None
