"""The pipeline end to end: a burst of N events, a paced load, and a backlog drained from the queue.

Throughput runs from the first submit to the last final state (server-side timestamps);
CPU is read from /proc for the worker tree, redis-server, this process (the submitter) and
the sink; memory per worker process is sampled while the phase runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pipeline.bench.latency import Percentiles, Timings, read_timings
from pipeline.bench.looplag import LoopLag, read_lag
from pipeline.bench.procstats import RssSampler, SessionSampler, cpu_seconds, machine_seconds, snapshot, status_kib
from pipeline.bench.scenario import lead_events, tenant_slug
from pipeline.bench.stack import BenchError, Stack, bench_pid, tree_pids, worker_pids
from pipeline.runtime.processes import WorkerProcess
from pipeline.submit import Submitter

SUBMIT_CHUNK = 1000
WARM_UP = 300


@dataclass
class CpuUse:
    """CPU seconds spent during a phase, by who spent them."""

    workers: float = 0.0
    redis: float = 0.0
    submitter: float = 0.0
    sink: float = 0.0
    machine: float = 0.0  # every process plus interrupts, including other users of the machine

    @property
    def ours(self) -> float:
        """Everything the pipeline needs: workers, Redis and the submitting process (not the sink)."""
        return self.workers + self.redis + self.submitter

    def per_thousand(self, emails: int) -> CpuUse:
        scale = 1000 / emails if emails else 0.0
        return CpuUse(self.workers * scale, self.redis * scale, self.submitter * scale, self.sink * scale, self.machine * scale)


@dataclass
class PipelineResult:
    name: str
    emails: int
    seconds: float
    latency: Percentiles
    cpu: CpuUse
    peak_rss_kib: dict[int, int]
    outcomes: dict[str, int]
    offered_rate: float | None = None  # paced runs: the rate submitted at
    rss_checkpoints: dict[int, dict[int, int]] = field(default_factory=dict)  # emails done → VmRSS per worker
    peak_sessions: dict[int, int] = field(default_factory=dict)  # worker pid → most SMTP connections to the sink at once
    loop_lag: LoopLag | None = None  # the send stage's event loop: lateness of a 10 ms timer over the phase

    @property
    def rate(self) -> float:
        return self.emails / self.seconds if self.seconds > 0 else 0.0


class Meter:
    """CPU snapshots around a phase and a VmRSS sampler on the worker processes."""

    def __init__(self, stack: Stack, worker: WorkerProcess) -> None:
        self.stack = stack
        self.worker = worker
        self.sampler = RssSampler(lambda: worker_pids(worker))
        self.sessions = SessionSampler(lambda: worker_pids(worker), stack.sink.port, interval=1.0) if stack.sink else None

    def __enter__(self) -> Meter:
        self.tree = tree_pids(self.worker)
        self.before = snapshot([*self.tree, self.stack.redis_pid, bench_pid(), self.stack.sink_pid])
        self.sampler.start()
        if self.sessions:
            self.sessions.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.after = snapshot([*self.tree, self.stack.redis_pid, bench_pid(), self.stack.sink_pid])
        self.peak_rss_kib = self.sampler.stop()
        self.peak_sessions = self.sessions.stop() if self.sessions else {}

    def cpu(self) -> CpuUse:
        b, a = self.before, self.after
        return CpuUse(
            workers=cpu_seconds(b, a, self.tree),
            redis=cpu_seconds(b, a, [self.stack.redis_pid]),
            submitter=cpu_seconds(b, a, [bench_pid()]),
            sink=cpu_seconds(b, a, [self.stack.sink_pid]),
            machine=machine_seconds(b, a),
        )


def _ids(prefix: str, start: int, count: int) -> list[str]:
    return [e["event_id"] for e in lead_events(prefix, start, count)]


def tenants_in_play(count: int, tenants: int) -> list[str]:
    """The tenants `count` events spread over `tenants` land on (`default` when not spread)."""
    return [tenant_slug(i, tenants) for i in range(min(count, tenants))] if tenants else ["default"]


def warm_up(stack: Stack, submitter: Submitter) -> int:
    """Push a few hundred events through: imports, templates, SMTP sessions and queues all ready."""
    report = submitter.submit(lead_events("warm", 0, WARM_UP), source="bench")
    if report.errors:
        raise BenchError(f"the scenario's events were refused: {report.errors[0].errors}")
    return stack.wait_final(len(report.accepted), timeout=120)


def _result(name: str, stack: Stack, meter: Meter, ids: list[str], started: float, tenants: int = 0) -> PipelineResult:
    client = stack.client()
    owners = [tenant_slug(i, tenants) for i in range(len(ids))] if tenants else None
    try:
        timings: Timings = read_timings(client, ids, tenants=owners)
    finally:
        client.close()
    if not timings.final_at:
        raise BenchError(f"{name}: no event reached a final state")
    time.sleep(1.5)  # the probes flush their samples every second
    return PipelineResult(
        name=name,
        emails=len(timings.final_at),
        seconds=timings.last_final - started,
        latency=Percentiles.of(timings.latencies),
        cpu=meter.cpu(),
        peak_rss_kib=meter.peak_rss_kib,
        outcomes=dict(timings.outcomes),
        peak_sessions=meter.peak_sessions,
        loop_lag=read_lag(stack.loop_lag_dir, started, timings.last_final),
    )


def run_burst(
    stack: Stack,
    worker: WorkerProcess,
    submitter: Submitter,
    count: int,
    prefix: str = "burst",
    tenants: int = 0,
    patience: float | None = None,
) -> PipelineResult:
    """Submit `count` events as fast as the submitter goes, while the workers drain them.

    `tenants` > 0 spreads the events round-robin over that many tenants (see `scenario.tenant_slug`).
    With `patience` (seconds) the phase ends then even if not every event is final: the result counts
    the final ones (emails/s up to the last of them) and the rest as outcome `not final`.
    """
    in_play = tenants_in_play(count, tenants)
    done_before = stack.final_count(tenant=in_play)
    with Meter(stack, worker) as meter:
        started = time.time()
        for start in range(0, count, SUBMIT_CHUNK):
            submitter.submit(lead_events(prefix, start, min(SUBMIT_CHUNK, count - start), tenants), source="bench")
        try:
            stack.wait_final(done_before + count, timeout=patience or max(120.0, count / 50), tenants=in_play)
        except BenchError:
            if patience is None:
                raise
    return _result(f"pipeline burst {count:,}", stack, meter, _ids(prefix, 0, count), started, tenants)


def run_paced(
    stack: Stack,
    worker: WorkerProcess,
    submitter: Submitter,
    rate: float,
    seconds: float,
    prefix: str = "paced",
    tenants: int = 0,
) -> PipelineResult:
    """Submit at a steady `rate` for `seconds` (small batches every 20 ms); latency is what this run is for."""
    tick = 0.02
    in_play = tenants_in_play(int(rate * seconds) + 1, tenants)
    done_before = stack.final_count(tenant=in_play)
    sent = 0
    with Meter(stack, worker) as meter:
        started = time.time()
        clock = time.monotonic()
        while (elapsed := time.monotonic() - clock) < seconds:
            due = int(rate * elapsed) - sent
            if due > 0:
                submitter.submit(lead_events(prefix, sent, due, tenants), source="bench")
                sent += due
            time.sleep(max(0.0, tick - (time.monotonic() - clock - elapsed)))
        stack.wait_final(done_before + sent, timeout=max(120.0, sent / 50), tenants=in_play)
    result = _result(f"pipeline paced {rate:,.0f}/s", stack, meter, _ids(prefix, 0, sent), started, tenants)
    result.offered_rate = sent / seconds
    return result


def run_drain(
    stack: Stack, count: int, checkpoints: tuple[int, ...], start_workers: Callable[[], WorkerProcess], prefix: str
) -> PipelineResult:
    """Workers start on a backlog of `count` queued events; VmRSS per worker is recorded at each checkpoint."""
    done_before = stack.final_count()
    worker = start_workers()
    started = time.time()
    rss: dict[int, dict[int, int]] = {}
    pending = sorted(checkpoints)

    def record(done: int) -> None:
        while pending and done - done_before >= pending[0]:
            rss[pending.pop(0)] = {pid: status_kib(pid, "VmRSS") for pid in worker_pids(worker)}

    with Meter(stack, worker) as meter:
        stack.wait_final(done_before + count, timeout=max(300.0, count / 50), on_progress=record)
    result = _result(f"pipeline drain {count:,} backlog", stack, meter, _ids(prefix, 0, count), started)
    result.rss_checkpoints = rss
    return result
