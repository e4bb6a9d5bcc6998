"""One benchmark run, phase by phase, on one stack: raw SMTP, pipeline burst, paced, submit, backlog."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline.bench.pipeline_run import run_burst, run_drain, run_paced, warm_up
from pipeline.bench.profiling import Recorder, format_summary, record_prefix, summarise
from pipeline.bench.raw_smtp import run_raw
from pipeline.bench.report import BenchResults
from pipeline.bench.scenario import Settings, wire_message, write_jsonl
from pipeline.bench.stack import Stack, worker_pids
from pipeline.bench.submit_rate import run_submit
from pipeline.submit import Submitter

Say = Callable[[str], None]


@dataclass(frozen=True)
class Plan:
    raw_emails: int
    burst_emails: int
    paced_seconds: float
    submit_events: int
    drain: bool  # workers drain the submitted backlog (and VmRSS is compared at the checkpoints)
    rss_checkpoints: tuple[int, ...] = ()


QUICK = Plan(raw_emails=5_000, burst_emails=4_000, paced_seconds=6, submit_events=20_000, drain=False)
FULL = Plan(
    raw_emails=30_000,
    burst_emails=20_000,
    paced_seconds=30,
    submit_events=100_000,
    drain=True,
    rss_checkpoints=(10_000, 100_000),
)
TINY = Plan(raw_emails=200, burst_emails=60, paced_seconds=1.5, submit_events=100, drain=True, rss_checkpoints=(20, 100))
HALF_LOAD = 0.5


def run_bench(
    directory: Path,
    plan: Plan,
    *,
    mode: str,
    settings: Settings | None = None,
    worker_env: dict[str, str] | None = None,
    profile_dir: Path | None = None,
    say: Say = print,
) -> BenchResults:
    settings = settings or Settings()
    stack = Stack(directory, settings=settings, worker_env=dict(worker_env or {})).start()
    try:
        config = stack.config
        message = wire_message(config)
        results = BenchResults(mode=mode, settings=asdict(settings), message_bytes=len(message))
        if profile_dir:
            results.notes.append(f"py-spy was attached (profiles in {profile_dir}): figures are a little low")

        say(f"1/5 raw aiosmtplib → smtp-sink: {plan.raw_emails:,} messages over 20 connections")
        results.raw = run_raw(stack.sink.port if stack.sink else 0, message, plan.raw_emails, 20, stack.sink_pid)

        say(f"2/5 pipeline: {settings.processes} worker processes, warm-up, then {plan.burst_emails:,} events")
        worker = stack.start_workers("worker-burst.log")
        submitter = Submitter(config)
        warm_up(stack, submitter)
        recorder = Recorder(profile_dir) if profile_dir else None
        if recorder:
            for pid in worker_pids(worker):
                recorder.attach(pid, f"worker-{pid}")
        results.burst = run_burst(stack, worker, submitter, plan.burst_emails)
        if recorder:
            _write_profile(recorder, profile_dir, "workers", say)

        rate = max(10.0, results.burst.rate * HALF_LOAD)
        say(f"3/5 pipeline paced at {rate:,.0f}/s for {plan.paced_seconds:.0f}s (half the burst rate)")
        paced_recorder = Recorder(profile_dir) if profile_dir else None
        if paced_recorder:  # small batches: where the fixed cost per broker message shows
            for pid in worker_pids(worker):
                paced_recorder.attach(pid, f"paced-worker-{pid}")
        results.paced = run_paced(stack, worker, submitter, rate, plan.paced_seconds)
        if paced_recorder:
            _write_profile(paced_recorder, profile_dir, "paced-workers", say)
        stack.stop_workers(worker)
        stack.flush()

        say(f"4/5 `mailpipe submit` of {plan.submit_events:,} events from a JSONL file (no workers running)")
        jsonl = write_jsonl(directory / "events.jsonl", "bulk", plan.submit_events)
        one_line = write_jsonl(directory / "one.jsonl", "one", 1)
        prefix = record_prefix(profile_dir / "submit.txt") if profile_dir else None
        results.submit = run_submit(stack, jsonl, one_line, prefix)
        if profile_dir and (profile_dir / "submit.txt").exists():
            _summarise_to(profile_dir, [profile_dir / "submit.txt"], "submit", say)

        if plan.drain:
            count = results.submit.events
            say(f"5/5 workers drain the {count:,} queued events; VmRSS per worker at {plan.rss_checkpoints}")
            results.drain = run_drain(
                stack, count, plan.rss_checkpoints, lambda: stack.start_workers("worker-drain.log"), prefix="bulk"
            )
        else:
            say("5/5 backlog drain and RSS 10k vs 100k: skipped (quick mode)")
        return results
    finally:
        stack.stop()


def _write_profile(recorder: Recorder, profile_dir: Path | None, name: str, say: Say) -> None:
    paths = recorder.stop()
    if profile_dir and paths:
        _summarise_to(profile_dir, paths, name, say)


def _summarise_to(profile_dir: Path, paths: list[Path], name: str, say: Say) -> None:
    text = format_summary(summarise(paths))
    (profile_dir / f"{name}-summary.txt").write_text(text + "\n", encoding="utf-8")
    say(f"profile of {name} written to {profile_dir / (name + '-summary.txt')}")


def to_json(results: BenchResults) -> str:
    payload = asdict(results)
    for key in ("raw", "submit"):
        value = getattr(results, key)
        if value is not None:
            payload[key]["rate"] = value.rate
    for key in ("burst", "paced", "drain"):
        value = getattr(results, key)
        if value is not None:
            payload[key]["rate"] = value.rate
    payload["ratio"] = results.ratio
    return json.dumps(payload, indent=2, default=str)
