"""CPU time and memory of process trees, read from /proc (Linux only).

CPU is utime + stime (+ the reaped children's) in clock ticks, read before and after a phase;
memory is VmRSS sampled on a thread, plus the kernel's own high-water mark VmHWM.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")
TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (field 3, `state`, is index 0)."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def cpu_ticks(pid: int) -> int:
    """utime + stime + cutime + cstime of one process; 0 once it is gone."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0
    return sum(int(f) for f in fields[11:15])


def descendants(pid: int) -> list[int]:
    """Every live process under `pid` (children, grandchildren, …), found via each one's ppid."""
    parents: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None:
                parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def status_kib(pid: int, field_name: str) -> int:
    """A `kB` field of /proc/<pid>/status (VmRSS, VmHWM); 0 once the process is gone."""
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


def machine_busy_ticks() -> int:
    """Non-idle CPU ticks of the whole machine (all processes, interrupts included)."""
    first = (PROC / "stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in first]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values[:8]) - idle


@dataclass
class CpuSnapshot:
    per_pid: dict[int, int]
    machine: int


def snapshot(pids: Iterable[int]) -> CpuSnapshot:
    return CpuSnapshot({pid: cpu_ticks(pid) for pid in pids}, machine_busy_ticks())


def cpu_seconds(before: CpuSnapshot, after: CpuSnapshot, pids: Iterable[int]) -> float:
    ticks = sum(after.per_pid.get(pid, 0) - before.per_pid.get(pid, 0) for pid in pids)
    return ticks / TICKS_PER_SECOND


def machine_seconds(before: CpuSnapshot, after: CpuSnapshot) -> float:
    return (after.machine - before.machine) / TICKS_PER_SECOND


@dataclass
class RssSampler:
    """Samples VmRSS of the processes `pids()` returns, every `interval` seconds, on a thread."""

    pids: Callable[[], list[int]]
    interval: float = 0.25
    peak_kib: dict[int, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> RssSampler:
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> dict[int, int]:
        now = {pid: status_kib(pid, "VmRSS") for pid in self.pids()}
        for pid, kib in now.items():
            self.peak_kib[pid] = max(self.peak_kib.get(pid, 0), kib)
        return now

    def stop(self) -> dict[int, int]:
        """Stop sampling; the peak per process, the kernel's VmHWM where it is higher."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        for pid in self.pids():
            self.peak_kib[pid] = max(self.peak_kib.get(pid, 0), status_kib(pid, "VmHWM"))
        return dict(self.peak_kib)


TCP_ESTABLISHED = "01"


def socket_inodes(pid: int) -> set[int]:
    """Inodes of the sockets `pid` holds open (its /proc/<pid>/fd links `socket:[N]`); empty once it is gone."""
    found: set[int] = set()
    try:
        entries = list((PROC / str(pid) / "fd").iterdir())
    except OSError:
        return found
    for entry in entries:
        try:
            target = os.readlink(entry)
        except OSError:
            continue  # closed between the listing and the readlink
        if target.startswith("socket:["):
            found.add(int(target[8:-1]))
    return found


def connections_to(pid: int, port: int, state: str | None = None) -> int:
    """TCP sockets `pid` holds (has a descriptor of) whose remote port is `port`, in `state` (a
    /proc/net/tcp state code such as TCP_ESTABLISHED) or any; IPv4 and IPv6."""
    inodes = socket_inodes(pid)
    if not inodes:
        return 0
    count = 0
    for table in ("tcp", "tcp6"):
        try:
            lines = (PROC / str(pid) / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            # sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode …
            fields = line.split()
            if len(fields) > 9 and state in (None, fields[3]) and int(fields[2].rpartition(":")[2], 16) == port:
                count += int(fields[9]) in inodes
    return count


@dataclass
class SessionSampler:
    """Peak of the TCP sockets each of `pids()` holds to `port` (any state: a session being closed
    counts until its descriptor is gone), sampled on a thread."""

    pids: Callable[[], list[int]]
    port: int
    interval: float = 0.25
    peak: dict[int, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> SessionSampler:
        self._thread = threading.Thread(target=self._run, name="session-sampler", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> dict[int, int]:
        now = {pid: connections_to(pid, self.port) for pid in self.pids()}
        for pid, sessions in now.items():
            self.peak[pid] = max(self.peak.get(pid, 0), sessions)
        return now

    def stop(self) -> dict[int, int]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return dict(self.peak)
