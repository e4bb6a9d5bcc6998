"""Everything one benchmark run starts: a private Redis, smtp-sink, the scenario files, worker commands."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import redis

from pipeline.bench.looplag import LAG_DIR_ENV
from pipeline.bench.procstats import descendants
from pipeline.bench.scenario import Settings, load_scenario, write_scenario
from pipeline.bench.sink import SmtpSink
from pipeline.config import Config
from pipeline.models import FINAL_OUTCOMES
from pipeline.runtime.processes import WorkerProcess
from pipeline.state import lua_scripts
from pipeline.state.keys import outcome_counts
from pipeline.state.localredis import LocalRedis

COUNTER_CHUNK = 2000  # outcome hashes summed per Redis call
SUM_FINAL = lua_scripts.load("outcome_counts_sum")


class BenchError(RuntimeError):
    """A phase could not finish (events not final in time, a process died)."""


@dataclass
class Stack:
    directory: Path
    settings: Settings = field(default_factory=Settings)
    worker_env: dict[str, str] = field(default_factory=dict)
    redis_server: LocalRedis | None = None
    sink: SmtpSink | None = None
    config_path: Path | None = None
    extra_config: str = ""  # appended to mailpipe.toml (the tenants run's `[database]`, `[secrets]`, `[tenants]`)
    _workers: list[WorkerProcess] = field(default_factory=list)

    def start(self) -> Stack:
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "redis").mkdir(exist_ok=True)
        self.redis_server = LocalRedis(self.directory / "redis").start()
        self.sink = SmtpSink().start()
        self.config_path = write_scenario(self.directory, self.redis_server.url, self.sink.port, self.settings, self.extra_config)
        return self

    def stop(self) -> None:
        for worker in self._workers:
            worker.stop()
        self._workers.clear()
        if self.sink:
            self.sink.stop()
        if self.redis_server:
            self.redis_server.stop()

    @property
    def config(self) -> Config:
        return load_scenario(self._config_path)

    @property
    def _config_path(self) -> Path:
        if self.config_path is None:
            raise BenchError("the stack is not started")
        return self.config_path

    @property
    def redis_pid(self) -> int:
        if self.redis_server is None or self.redis_server.process is None:
            raise BenchError("redis-server is not running")
        pid: int = self.redis_server.process.pid
        return pid

    @property
    def sink_pid(self) -> int:
        if self.sink is None:
            raise BenchError("smtp-sink is not running")
        return self.sink.pid

    def client(self) -> redis.Redis:
        if self.redis_server is None:
            raise BenchError("the stack is not started")
        return redis.Redis.from_url(self.redis_server.url)

    def flush(self) -> None:
        """A clean Redis between phases (no workers may be running)."""
        client = self.client()
        client.flushall()
        client.close()

    @property
    def loop_lag_dir(self) -> Path:
        """Where the workers' event-loop lag probes write their samples (pipeline/bench/looplag.py)."""
        return self.directory / "loop-lag"

    def start_workers(self, log_name: str = "worker.log") -> WorkerProcess:
        worker = WorkerProcess(
            self._config_path,
            processes=self.settings.processes,
            threads=self.settings.threads,
            env={LAG_DIR_ENV: str(self.loop_lag_dir), **self.worker_env},
            log_path=self.directory / log_name,
        ).start()
        self._workers.append(worker)
        deadline = time.monotonic() + 30
        while len(worker_pids(worker)) < self.settings.processes:
            if worker.process is None or worker.process.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"worker processes did not start; see {self.directory / log_name}")
            time.sleep(0.05)
        return worker

    def stop_workers(self, worker: WorkerProcess) -> None:
        worker.stop()
        if worker in self._workers:
            self._workers.remove(worker)

    def final_count(self, client: redis.Redis | None = None, tenant: str | Sequence[str] = "default") -> int:
        """Events with a final outcome so far, from the status store's outcome counters (summed over `tenant`s)."""
        own = client or self.client()
        names = [tenant] if isinstance(tenant, str) else list(tenant)
        total = 0
        try:
            # Summed inside Redis: parsing 10,000 hashes in this process every poll took CPU from the workers.
            for start in range(0, len(names), COUNTER_CHUNK):
                keys = [outcome_counts(name) for name in names[start : start + COUNTER_CHUNK]]
                total += int(lua_scripts.run(own, SUM_FINAL.bind(keys=keys, args=sorted(FINAL_OUTCOMES))))
        finally:
            if client is None:
                own.close()
        return total

    def wait_final(
        self,
        target: int,
        timeout: float,
        on_progress: Callable[[int], None] | None = None,
        tenants: str | Sequence[str] = "default",
    ) -> int:
        """Poll the outcome counters (of `tenants`) until `target` events are final; raise BenchError on timeout."""
        client = self.client()
        deadline = time.monotonic() + timeout
        # Summing thousands of tenants' counters costs Redis CPU the pipeline needs: poll those less often.
        interval = 0.05 if isinstance(tenants, str) or len(tenants) < 100 else 0.5
        try:
            done = self.final_count(client, tenants)
            while done < target:
                if time.monotonic() > deadline:
                    raise BenchError(f"only {done} of {target} events final after {timeout:.0f}s")
                time.sleep(interval)
                done = self.final_count(client, tenants)
                if on_progress is not None:
                    on_progress(done)
        finally:
            client.close()
        return done


def worker_pids(worker: WorkerProcess) -> list[int]:
    """The Dramatiq worker processes (not the supervising parent)."""
    if worker.process is None:
        return []
    return descendants(worker.pid)


def tree_pids(worker: WorkerProcess) -> list[int]:
    """The supervising parent and every process under it."""
    if worker.process is None:
        return []
    return [worker.pid, *descendants(worker.pid)]


def bench_pid() -> int:
    return os.getpid()
