"""py-spy sampling of the worker processes (and the submit command), summarised per stage and library.

Recorded with `--gil`: only the thread holding the GIL is sampled, so the samples show where each
process's Python CPU goes, not threads waiting on a socket or on the GIL. Raw (collapsed-stack)
files are kept beside the summary so a flame graph can be drawn from them later
(`flamegraph.pl worker-123.txt > worker.svg`, or load them into speedscope).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

SAMPLE_RATE = 200

# Leaf frame file → what the CPU was spent on; first match wins, checked against the leaf-most
# frame that matches any rule (C code shows up as its Python caller).
LIBRARIES: tuple[tuple[str, str], ...] = (
    ("/pydantic", "pydantic validate/serialise"),
    ("/email_validator/", "email address validation"),
    ("/idna/", "email address validation"),
    ("/dns/", "email address validation"),
    ("/jinja2/", "jinja2 templates"),
    ("/markupsafe/", "jinja2 templates"),
    ("/email/", "MIME building (stdlib email)"),
    ("/redis/", "redis-py client"),
    ("/dramatiq/", "Dramatiq broker/worker"),
    ("/aiosmtplib/", "aiosmtplib"),
    ("/asyncio/", "asyncio event loop"),
    ("/structlog/", "logging"),
    ("/logging/", "logging"),
    ("/prometheus_client/", "prometheus metrics"),
    ("/pluggy/", "pluggy hooks"),
    ("/json/", "json"),
    ("/zoneinfo/", "zoneinfo/datetime"),
    ("/hmac.py", "hashing/signing"),
    ("/hashlib.py", "hashing/signing"),
    ("/uuid.py", "uuid"),
    ("/threading.py", "threads/queues"),
    ("/queue.py", "threads/queues"),
    ("/selectors.py", "sockets/select"),
    ("/socket.py", "sockets/select"),
    ("/ssl.py", "sockets/select"),
    ("/plugins/", "mailpipe plugins"),
    ("/pipeline/", "mailpipe code"),
)


def find_py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def record_prefix(output: Path, rate: int = SAMPLE_RATE) -> list[str]:
    """`py-spy record … --` to put in front of a command so it is profiled from its start."""
    binary = find_py_spy()
    if binary is None:
        raise RuntimeError("py-spy not found: pip install py-spy")
    return [binary, "record", "--format", "raw", "--full-filenames", "--gil", "-r", str(rate), "-o", str(output), "--"]


@dataclass
class Recorder:
    """py-spy attached to running processes until stop()."""

    directory: Path
    rate: int = SAMPLE_RATE
    outputs: list[Path] = field(default_factory=list)
    _processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def attach(self, pid: int, name: str) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        output = self.directory / f"{name}.txt"
        args = [*record_prefix(output, self.rate)[:-1], "--pid", str(pid)]
        self._processes.append(subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        self.outputs.append(output)
        return output

    def stop(self) -> list[Path]:
        for process in self._processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
        for process in self._processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        self._processes.clear()
        return [p for p in self.outputs if p.exists()]


@dataclass
class Frame:
    function: str
    path: str

    @property
    def label(self) -> str:
        return f"{self.function} ({_short(self.path)})"


def _short(path: str) -> str:
    for marker in ("/site-packages/", "/lib/python3.11/", "/lib/python3.12/", "/lib/python3.13/"):
        if marker in path:
            return path.split(marker, 1)[1]
    for marker in ("/pipeline/", "/plugins/"):
        if marker in path:
            return marker.strip("/") + "/" + path.split(marker, 1)[1]
    return os.path.basename(path)


def parse_frame(text: str) -> Frame:
    function, _, rest = text.partition(" (")
    path = rest.rstrip(")").rsplit(":", 1)[0]
    return Frame(function, path)


def parse_collapsed(lines: Iterable[str]) -> list[tuple[list[Frame], int]]:
    """`root;…;leaf COUNT` lines → (frames root first, count)."""
    stacks = []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        stacks.append(([parse_frame(f) for f in stack.split(";") if f], int(count)))
    return stacks


def library_of(frames: list[Frame]) -> str:
    for frame in reversed(frames):
        for needle, name in LIBRARIES:
            if needle in frame.path:
                return name
    return "other"


def stage_of(frames: list[Frame]) -> str:
    """The pipeline stage a sample belongs to, from the outermost stage-module frame."""
    for frame in frames:
        if "/pipeline/stages/" in frame.path and not frame.path.endswith("/batch.py"):
            return Path(frame.path).stem
        if frame.path.endswith("/pipeline/runtime/enqueue.py"):
            return "enqueue (next stage)"
        if frame.path.endswith("/pipeline/submit.py"):
            return "submit"
    # Work the send stage started that runs in its own event-loop callbacks (pipelined script
    # calls, SMTP replies): its stack holds Dramatiq's event-loop thread but no stage frame.
    if any(f.function == "EventLoopThread.run" for f in frames):
        return "send (event loop)"
    if any("/dramatiq/" in f.path for f in frames):
        return "Dramatiq consume/ack"
    return "other"


@dataclass
class Summary:
    samples: int
    by_stage: Counter[str]
    by_library: Counter[str]
    self_time: Counter[str]
    inclusive_ours: Counter[str]  # mailpipe functions, each counted once per sample

    def share(self, count: int) -> float:
        return 100.0 * count / self.samples if self.samples else 0.0


def summarise(paths: Iterable[Path]) -> Summary:
    by_stage: Counter[str] = Counter()
    by_library: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for path in paths:
        for frames, count in parse_collapsed(path.read_text(encoding="utf-8", errors="replace").splitlines()):
            if not frames:
                continue
            total += count
            by_stage[stage_of(frames)] += count
            by_library[library_of(frames)] += count
            self_time[frames[-1].label] += count
            for label in {f.label for f in frames if "/pipeline/" in f.path or "/plugins/" in f.path}:
                inclusive[label] += count
    return Summary(total, by_stage, by_library, self_time, inclusive)


def format_summary(summary: Summary, top: int = 15) -> str:
    lines = [f"samples: {summary.samples} (GIL holder only, {SAMPLE_RATE} Hz)"]
    for title, counter in (
        ("by stage", summary.by_stage),
        ("by library (leaf-most known frame)", summary.by_library),
        ("self time, top functions", summary.self_time),
        ("inclusive, mailpipe functions", summary.inclusive_ours),
    ):
        lines.append(f"\n{title}:")
        for label, count in counter.most_common(top):
            lines.append(f"  {summary.share(count):5.1f}%  {label}")
    return "\n".join(lines)
