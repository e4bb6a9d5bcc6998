"""A private PostgreSQL cluster on a free port, for the demo, the tests and the benchmark.

``initdb`` into a directory, ``pg_ctl start`` on 127.0.0.1 and a free port, ``pg_ctl stop`` at the
end. The machine's own PostgreSQL (5432) is never touched. ``initdb`` refuses to run as root, so
as root the cluster runs as the ``postgres`` system user in a directory that user owns.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from pipeline.errors import MailpipeError
from pipeline.smtp.netutil import free_port

SUPERUSER = "mailpipe"
SEARCH = "/usr/lib/postgresql/*/bin"


class LocalPostgresError(MailpipeError):
    """The private cluster could not be created or started."""


def find_binary(name: str) -> str:
    """``name`` from the newest /usr/lib/postgresql/*/bin, else from PATH."""
    versions = sorted(glob.glob(SEARCH), key=lambda p: int(p.split("/")[-2]) if p.split("/")[-2].isdigit() else 0)
    for directory in reversed(versions):
        candidate = Path(directory) / name
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise LocalPostgresError(f"{name} not found: install PostgreSQL (ops/bootstrap.sh does, as root) or set [database] url")
    return found


class LocalPostgres:
    """``with LocalPostgres(dir) as pg: pg.url(\"mydb\")``; ``fast=True`` trades durability for speed (tests)."""

    def __init__(
        self,
        directory: Path | None = None,
        *,
        port: int | None = None,
        fast: bool = False,
        settings: dict[str, str] | None = None,
    ) -> None:
        self._owned_dir = False
        self.run_as: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            self.run_as = _postgres_user()
            # The postgres user must be able to reach the directory: the caller's one may sit under a
            # root-only parent (pytest's tmp dirs do), so as root the cluster gets its own directory.
            directory = Path(tempfile.mkdtemp(prefix="mailpipe-pg-"))
            self._owned_dir = True
            os.chown(directory, self.run_as.pw_uid, self.run_as.pw_gid)
        self.directory = directory or Path(tempfile.mkdtemp(prefix="mailpipe-pg-"))
        self.data = self.directory / "data"
        self.log = self.directory / "postgres.log"
        self.port = port or free_port()
        self.fast = fast
        self.settings = dict(settings or {})  # extra server settings (-c name=value), e.g. for a benchmark
        self.started = False

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _run(self, args: list[str], timeout: float = 120) -> None:
        extra: dict[str, Any] = {}
        if self.run_as is not None:
            extra = {"user": self.run_as.pw_uid, "group": self.run_as.pw_gid, "extra_groups": []}
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        try:
            subprocess.run(args, check=True, capture_output=True, timeout=timeout, cwd=self.directory, env=env, **extra)
        except subprocess.CalledProcessError as exc:
            tail = (exc.stderr or b"").decode(errors="replace").strip().splitlines()[-5:]
            log = self.log.read_text(errors="replace").strip().splitlines()[-5:] if self.log.exists() else []
            raise LocalPostgresError(f"{Path(args[0]).name} failed: {' | '.join(tail + log)}") from None

    def start(self) -> LocalPostgres:
        self.directory.mkdir(parents=True, exist_ok=True)
        if not (self.data / "PG_VERSION").exists():
            self._run(
                [
                    find_binary("initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    SUPERUSER,
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-instructions",
                ]
            )
        options = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            f"-c unix_socket_directories={self.data}",
            "-c max_connections=200",
            "-c shared_buffers=64MB",
        ]
        if self.fast:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        options += [f"-c {name}={value}" for name, value in self.settings.items()]
        self._run(
            [find_binary("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", " ".join(options), "start"]
        )
        self.started = True
        return self

    def stop(self) -> None:
        if self.started:
            try:
                self._run([find_binary("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"], timeout=60)
            finally:
                self.started = False
        if self._owned_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _postgres_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise LocalPostgresError("running as root needs the `postgres` system user (apt-get install postgresql)") from None
