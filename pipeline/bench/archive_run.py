"""`ops/bench --archiver`: the pipeline with a database, bursts with and without `mailpipe archive`, interleaved.

The stack is the usual one (private Redis, smtp-sink, worker processes) plus a private PostgreSQL
cluster (durable settings, `track_commit_timestamp` on): the config gets `[database] url`, so the
submitter asks the delivery log once per batch (event_id dedupe beyond the hot window) and final
events keep their hot keys until archived — the deployment the archiver is for. Every burst runs on
the same stack and workers; the order alternates (without, with, with, without, …) so drift of a
shared machine falls on both sides. A burst "with" has `mailpipe archive` (its own process, as in
production) consuming the events stream while the workers send; it ends once the archiver has
caught up. An unmeasured burst runs first (the first one ran faster than any later one, whichever
side it was on). Before a burst "without", `mailpipe archive --once` empties the stream first (not
measured), so neither side inherits the other's backlog.

Archive lag is exact and costs the run nothing: a history row's commit time
(`pg_xact_commit_timestamp(xmin)`) minus its transition time (`at`), over the final transitions of
the bursts "with".
"""

from __future__ import annotations

import base64
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from pipeline.bench.pipeline_run import PipelineResult, run_burst, warm_up
from pipeline.bench.procstats import cpu_ticks
from pipeline.bench.raw_smtp import RawResult, run_raw
from pipeline.bench.scenario import Settings, wire_message
from pipeline.bench.stack import BenchError, Stack
from pipeline.bench.tenants import MASTER_KEY_ENV, apply_declared, extra_config, master_key_in_env
from pipeline.config.schema import TenantsConfig
from pipeline.db import migrate
from pipeline.db.engine import make_engine
from pipeline.db.localpg import LocalPostgres
from pipeline.models import FINAL_OUTCOMES
from pipeline.observe.snapshot import archive_backlog
from pipeline.submit import Submitter

Say = Callable[[str], None]
TARGET = 0.90  # issue 18: throughput with the archiver within 10 %
TARGET_LAG_P99 = 5.0  # seconds


@dataclass(frozen=True)
class ArchivePlan:
    raw_emails: int
    burst_emails: int
    pairs: int  # bursts with and without the archiver, this many of each


ARCHIVE_FULL = ArchivePlan(raw_emails=30_000, burst_emails=20_000, pairs=2)
ARCHIVE_QUICK = ArchivePlan(raw_emails=5_000, burst_emails=4_000, pairs=2)
ARCHIVE_TINY = ArchivePlan(raw_emails=200, burst_emails=60, pairs=1)


@dataclass
class ArchiveResults:
    mode: str
    settings: dict[str, Any]
    message_bytes: int
    raw: RawResult | None = None
    without: list[PipelineResult] = field(default_factory=list)
    with_archiver: list[PipelineResult] = field(default_factory=list)
    order: list[str] = field(default_factory=list)
    lag: dict[str, float] = field(default_factory=dict)  # p50, p99, max seconds; rows
    catch_up: list[float] = field(default_factory=list)  # seconds from a burst's last final event to backlog 0
    archiver_cpu: list[float] = field(default_factory=list)  # the archiver's CPU seconds per 1,000 emails, per burst
    notes: list[str] = field(default_factory=list)

    @staticmethod
    def _mean(results: list[PipelineResult]) -> float:
        return sum(r.rate for r in results) / len(results) if results else math.nan

    @property
    def ratio(self) -> float:
        """Mean emails/s with the archiver against without it, same run."""
        without = self._mean(self.without)
        return self._mean(self.with_archiver) / without if without else math.nan


def run_archiver_bench(
    directory: Path,
    plan: ArchivePlan,
    *,
    mode: str,
    settings: Settings | None = None,
    worker_env: dict[str, str] | None = None,
    say: Say = print,
) -> ArchiveResults:
    settings = settings or Settings()
    defaults = TenantsConfig()
    master = base64.b64encode(os.urandom(32)).decode()
    directory.mkdir(parents=True, exist_ok=True)
    say("1/4 private PostgreSQL (track_commit_timestamp on), migrations, `config apply`")
    postgres = LocalPostgres(directory / "postgres", settings={"track_commit_timestamp": "on"}).start()
    stack: Stack | None = None
    engine: Engine | None = None
    try:
        with master_key_in_env(master):
            engine = make_engine(postgres.url())
            migrate.upgrade(engine)
            env = {**(worker_env or {}), MASTER_KEY_ENV: master}
            stack = Stack(
                directory,
                settings=settings,
                worker_env=env,
                extra_config=extra_config(postgres.url(), defaults.max_cached, defaults.max_smtp_sessions),
            ).start()
            config = stack.config
            apply_declared(config)
            results = ArchiveResults(mode=mode, settings=asdict(settings), message_bytes=len(wire_message(config)))
            _phases(stack, engine, plan, results, env, say)
            return results
    finally:
        if stack is not None:
            stack.stop()
        if engine is not None:
            engine.dispose()
        postgres.stop()


def _archive_command(stack: Stack, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pipeline.cli", "archive", "--config", str(stack.config_path), *extra]


def _drain(stack: Stack, env: dict[str, str]) -> None:
    done = subprocess.run(
        _archive_command(stack, "--once"), env={**os.environ, **env}, capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        raise BenchError(f"mailpipe archive --once failed: {done.stderr.strip()[-500:]}")


def _wait_caught_up(stack: Stack, archiver: subprocess.Popen[bytes], timeout: float) -> float:
    client = stack.client()
    began = time.monotonic()
    try:
        while archive_backlog(client) > 0:
            if archiver.poll() is not None:
                raise BenchError(f"mailpipe archive exited with {archiver.returncode}; see {stack.directory}/archive.log")
            if time.monotonic() - began > timeout:
                raise BenchError(f"the archiver did not catch up within {timeout:.0f}s")
            time.sleep(0.1)
    finally:
        client.close()
    return time.monotonic() - began


def _phases(stack: Stack, engine: Engine, plan: ArchivePlan, results: ArchiveResults, env: dict[str, str], say: Say) -> None:
    config = stack.config
    say(f"2/4 raw aiosmtplib → smtp-sink: {plan.raw_emails:,} messages over 20 connections")
    results.raw = run_raw(stack.sink.port if stack.sink else 0, wire_message(config), plan.raw_emails, 20, stack.sink_pid)

    say(f"3/4 pipeline with [database]: warm-up, then {2 * plan.pairs} bursts of {plan.burst_emails:,}, with and without")
    worker = stack.start_workers("worker-archive.log")
    submitter = Submitter(config)
    warm_up(stack, submitter)
    # The first burst after start-up ran faster than every later one in each trial run (whichever
    # side it was on): one unmeasured burst first, so the pairs compare like with like.
    say(f"  settling burst of {plan.burst_emails:,} (not measured)")
    run_burst(stack, worker, submitter, plan.burst_emails, prefix="settle")
    order = [archiving for i in range(plan.pairs) for archiving in ((False, True) if i % 2 == 0 else (True, False))]
    archived_prefixes: list[str] = []
    for number, archiving in enumerate(order, start=1):
        prefix = f"b{number}{'a' if archiving else 'n'}"
        if not archiving:
            _drain(stack, env)
            say(f"  burst {number}: without the archiver")
            results.without.append(run_burst(stack, worker, submitter, plan.burst_emails, prefix=prefix))
            results.order.append("without")
            continue
        _drain(stack, env)
        log = (stack.directory / "archive.log").open("ab")
        archiver = subprocess.Popen(_archive_command(stack), env={**os.environ, **env}, stdout=log, stderr=log)
        try:
            time.sleep(1.0)  # its start-up (imports, schema check) is not the burst's
            started_ticks = cpu_ticks(archiver.pid)
            say(f"  burst {number}: with `mailpipe archive` running")
            results.with_archiver.append(run_burst(stack, worker, submitter, plan.burst_emails, prefix=prefix))
            results.order.append("with")
            results.catch_up.append(_wait_caught_up(stack, archiver, timeout=300))
            ticks = cpu_ticks(archiver.pid) - started_ticks
            results.archiver_cpu.append(ticks / os.sysconf("SC_CLK_TCK") / plan.burst_emails * 1000)
        finally:
            archiver.send_signal(signal.SIGTERM)
            try:
                archiver.wait(timeout=30)
            except subprocess.TimeoutExpired:
                archiver.kill()
                archiver.wait()
            log.close()
        archived_prefixes.append(prefix)
    stack.stop_workers(worker)
    say("4/4 archive lag from the delivery log: commit time of each final transition's row minus the transition")
    results.lag = archive_lag(engine, archived_prefixes)


def archive_lag(engine: Engine, prefixes: list[str]) -> dict[str, float]:
    query = text(
        "SELECT extract(epoch FROM pg_xact_commit_timestamp(xmin) - at) AS lag FROM delivery_history "
        "WHERE tenant = 'default' AND state = ANY(:finals) AND split_part(event_id, '-', 1) = ANY(:prefixes)"
    )
    with engine.connect() as connection:
        lags = sorted(float(r.lag) for r in connection.execute(query, {"finals": sorted(FINAL_OUTCOMES), "prefixes": prefixes}))
    if not lags:
        return {"rows": 0}
    return {
        "rows": len(lags),
        "p50": lags[len(lags) // 2],
        "p99": lags[min(len(lags) - 1, int(len(lags) * 0.99))],
        "max": lags[-1],
    }


def render_archive(results: ArchiveResults) -> str:
    lines = [f"## Throughput with the archiver ({results.mode}; private PostgreSQL, `mailpipe archive` process)", ""]
    lines.append("| phase | emails | seconds | emails/s | vs raw | p50 latency ms | p99 latency ms |")
    lines.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    raw = results.raw
    if raw:
        lines.append(f"| raw aiosmtplib → smtp-sink | {raw.emails:,} | {raw.seconds:.1f} | {raw.rate:,.0f} | 1.000 | - | - |")
    runs = {"with": iter(results.with_archiver), "without": iter(results.without)}
    for number, side in enumerate(results.order, start=1):
        r = next(runs[side])
        vs_raw = f"{r.rate / raw.rate:.3f}" if raw and raw.rate else "-"
        lines.append(
            f"| burst {number}, {side} archiver | {r.emails:,} | {r.seconds:.1f} | {r.rate:,.0f} | {vs_raw} |"
            f" {r.latency.p50 * 1000:,.0f} | {r.latency.p99 * 1000:,.0f} |"
        )
    lines.append("")
    without, with_ = ArchiveResults._mean(results.without), ArchiveResults._mean(results.with_archiver)
    verdict = "meets" if results.ratio >= TARGET else "misses"
    lines.append(
        f"mean emails/s without the archiver {without:,.0f}, with it {with_:,.0f}: ratio {results.ratio:.3f} "
        f"({verdict} the >= {TARGET:.2f} target)"
    )
    lag = results.lag
    if lag.get("rows"):
        verdict = "meets" if lag["p99"] < TARGET_LAG_P99 else "misses"
        lines.append(
            f"archive lag (final transition → row committed) over {int(lag['rows']):,} rows: p50 {lag['p50'] * 1000:,.0f} ms, "
            f"p99 {lag['p99'] * 1000:,.0f} ms, max {lag['max'] * 1000:,.0f} ms ({verdict} p99 < {TARGET_LAG_P99:.0f} s)"
        )
    if results.catch_up:
        lines.append("archiver caught up after each burst in " + ", ".join(f"{s:.1f}s" for s in results.catch_up))
    if results.archiver_cpu:
        per_burst = ", ".join(f"{c:.2f}" for c in results.archiver_cpu)
        lines.append(f"archiver CPU-s per 1,000 emails: {per_burst} (PostgreSQL's own work not included)")
    lines += [f"note: {n}" for n in results.notes]
    return "\n".join(lines)


def archive_json(results: ArchiveResults) -> str:
    payload = asdict(results)
    payload["ratio"] = results.ratio
    return json.dumps(payload, indent=2, default=str)
