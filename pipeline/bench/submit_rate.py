"""`mailpipe submit FILE.jsonl`, the command users run, timed on a large file with no workers consuming."""

from __future__ import annotations

import re
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.bench.procstats import cpu_seconds, snapshot
from pipeline.bench.stack import BenchError, Stack

_ACCEPTED = re.compile(r"accepted (\d+)")


@dataclass
class SubmitResult:
    events: int
    seconds: float
    startup_seconds: float  # the same command on a one-line file: interpreter, imports, config
    cli_cpu: float
    redis_cpu: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def submit_command(config_path: Path, jsonl: Path, prefix: list[str] | None = None) -> list[str]:
    return [*(prefix or []), sys.executable, "-P", "-m", "pipeline.cli", "submit", str(jsonl), "--config", str(config_path)]


def _run(command: list[str]) -> tuple[int, float]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=1800)
    seconds = time.perf_counter() - started
    match = _ACCEPTED.search(done.stdout)
    if done.returncode != 0 or match is None:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise BenchError(f"mailpipe submit failed ({done.returncode}): {' | '.join(tail)}")
    return int(match.group(1)), seconds


def run_submit(stack: Stack, jsonl: Path, one_line: Path, profile_prefix: list[str] | None = None) -> SubmitResult:
    """Time the CLI on `jsonl` (after a one-line run for its startup cost); no worker may be running."""
    config_path = stack.config_path
    if config_path is None:
        raise BenchError("the stack is not started")
    _, startup = _run(submit_command(config_path, one_line))
    stack.flush()  # the one-line run's event must not join the backlog
    before_children = _children_cpu()
    before = snapshot([stack.redis_pid])
    accepted, seconds = _run(submit_command(config_path, jsonl, profile_prefix))
    after = snapshot([stack.redis_pid])
    return SubmitResult(
        events=accepted,
        seconds=seconds,
        startup_seconds=startup,
        cli_cpu=_children_cpu() - before_children,
        redis_cpu=cpu_seconds(before, after, [stack.redis_pid]),
    )
