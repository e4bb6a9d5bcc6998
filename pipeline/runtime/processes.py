"""Start and stop `mailpipe worker` processes (demo, tests, benchmarks)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path


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
        self._log = None

    def start(self) -> WorkerProcess:
        env = {**os.environ, **self.env, "MAILPIPE_CONFIG": str(self.config_path), "MAILPIPE_LOG_FORMAT": "json"}
        args = [sys.executable, "-m", "pipeline.cli", "worker", "-p", str(self.processes), "-t", str(self.threads)]
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
            try:  # leftovers of the group (a worker that outlived its parent)
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self._log:
            self._log.close()
            self._log = None
        self.process = None

    def kill(self) -> None:
        """SIGKILL the whole process group: a crash, not a shutdown."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)
