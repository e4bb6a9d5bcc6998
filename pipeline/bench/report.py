"""The benchmark's output: Markdown tables (pasteable into docs/performance.md) and a one-line summary."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from pipeline.bench.pipeline_run import PipelineResult
from pipeline.bench.raw_smtp import RawResult
from pipeline.bench.submit_rate import SubmitResult


@dataclass
class BenchResults:
    mode: str
    settings: dict[str, Any]
    message_bytes: int
    raw: RawResult | None = None
    burst: PipelineResult | None = None
    paced: PipelineResult | None = None
    submit: SubmitResult | None = None
    drain: PipelineResult | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        if self.raw is None or self.burst is None or not self.raw.rate:
            return math.nan
        return self.burst.rate / self.raw.rate


def _ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1000:,.0f}"


def _mb(kib: int) -> str:
    return f"{kib / 1024:,.0f}"


def _peak(result: PipelineResult) -> str:
    return " / ".join(_mb(k) for _, k in sorted(result.peak_rss_kib.items())) or "-"


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *(line(r) for r in rows)]


def main_table(results: BenchResults) -> list[str]:
    rows: list[list[str]] = []
    if results.raw:
        raw = results.raw
        rows.append(
            [
                "1. raw aiosmtplib → smtp-sink, 20 conns, 1 process",
                f"{raw.emails:,}",
                f"{raw.seconds:.1f}",
                f"{raw.rate:,.0f}",
                "-",
                "-",
                "-",
                f"{1000 * raw.client_cpu / raw.emails:.2f}",
                "-",
            ]
        )
    phases = (
        ("2. pipeline, submit N → last final", results.burst, True),
        ("2b. pipeline at ~50% of max, paced", results.paced, True),
        ("2c. pipeline draining a queued backlog", results.drain, False),
    )
    for label, result, has_latency in phases:
        if result is None:
            continue
        if result.offered_rate:
            label += f" ({result.offered_rate:,.0f}/s offered)"
        latency = result.latency
        rows.append(
            [
                label,
                f"{result.emails:,}",
                f"{result.seconds:.1f}",
                f"{result.rate:,.0f}",
                _ms(latency.p50) if has_latency else "-",
                _ms(latency.p95) if has_latency else "-",
                _ms(latency.p99) if has_latency else "-",
                f"{result.cpu.per_thousand(result.emails).ours:.2f}",
                _peak(result),
            ]
        )
    if results.submit:
        s = results.submit
        rows.append(
            [
                f"3. `mailpipe submit` JSONL (startup {s.startup_seconds:.1f}s)",
                f"{s.events:,}",
                f"{s.seconds:.1f}",
                f"{s.rate:,.0f}",
                "-",
                "-",
                "-",
                f"{1000 * (s.cli_cpu + s.redis_cpu) / max(1, s.events):.2f}",
                "-",
            ]
        )
    header = ["case", "emails", "s", "emails/s", "p50 ms", "p95 ms", "p99 ms", "CPU-s/1k", "peak RSS MB/worker"]
    return markdown_table(header, rows)


def cpu_table(results: BenchResults) -> list[str]:
    rows = []
    for result in (results.burst, results.paced, results.drain):
        if result is None:
            continue
        cpu = result.cpu.per_thousand(result.emails)
        rows.append(
            [
                result.name,
                f"{cpu.workers:.2f}",
                f"{cpu.redis:.2f}",
                f"{cpu.submitter:.2f}",
                f"{cpu.ours:.2f}",
                f"{cpu.sink:.2f}",
                f"{cpu.machine:.2f}",
            ]
        )
    if results.raw:
        raw = results.raw
        scale = 1000 / raw.emails
        rows.append(
            [
                "raw aiosmtplib",
                "-",
                "-",
                f"{raw.client_cpu * scale:.2f}",
                f"{raw.client_cpu * scale:.2f}",
                f"{raw.sink_cpu * scale:.2f}",
                "-",
            ]
        )
    header = ["CPU seconds per 1,000 emails", "workers", "redis", "submitter/client", "ours", "smtp-sink", "whole machine"]
    return markdown_table(header, rows)


def loop_lag_table(results: BenchResults) -> list[str]:
    """The send stage's event loop: how late a 10 ms timer fired while each phase ran (all worker processes)."""
    rows = []
    for result in (results.burst, results.paced, results.drain):
        lag = result.loop_lag if result else None
        if result is None or lag is None or not lag.samples:
            continue
        rows.append([result.name, f"{lag.samples:,}", f"{lag.p50 * 1000:.1f}", f"{lag.p99 * 1000:.1f}", f"{lag.max * 1000:.1f}"])
    if not rows:
        return []
    return markdown_table(["send event-loop lag (10 ms timer)", "samples", "p50 ms", "p99 ms", "max ms"], rows)


def rss_lines(results: BenchResults) -> list[str]:
    drain = results.drain
    if drain is None or len(drain.rss_checkpoints) < 2:
        return []
    marks = sorted(drain.rss_checkpoints)
    first, last = drain.rss_checkpoints[marks[0]], drain.rss_checkpoints[marks[-1]]
    lines = []
    for pid in sorted(first):
        if pid in last and first[pid]:
            change = 100.0 * (last[pid] - first[pid]) / first[pid]
            lines.append(
                f"worker {pid}: VmRSS {_mb(first[pid])} MB at {marks[0]:,} emails → {_mb(last[pid])} MB at "
                f"{marks[-1]:,} ({change:+.1f}%)"
            )
    return lines


def rss_growth(results: BenchResults) -> float | None:
    drain = results.drain
    if drain is None or len(drain.rss_checkpoints) < 2:
        return None
    marks = sorted(drain.rss_checkpoints)
    first, last = drain.rss_checkpoints[marks[0]], drain.rss_checkpoints[marks[-1]]
    changes = [100.0 * (last[p] - first[p]) / first[p] for p in first if p in last and first[p]]
    return max(changes, key=abs) if changes else None


def summary_line(results: BenchResults) -> str:
    parts = [f"bench {results.mode}:"]
    if results.burst and results.raw:
        parts.append(f"pipeline {results.burst.rate:,.0f}/s = {results.ratio:.2f}x raw {results.raw.rate:,.0f}/s;")
    if results.burst:
        cpu = results.burst.cpu.per_thousand(results.burst.emails)
        parts.append(f"{cpu.ours:.2f} CPU-s/1k;")
        parts.append(f"peak worker RSS {max(results.burst.peak_rss_kib.values(), default=0) / 1024:.0f} MB;")
    if results.paced:
        parts.append(f"p99 {_ms(results.paced.latency.p99)} ms at {results.paced.offered_rate or 0:,.0f}/s (50% load);")
    if results.burst and results.burst.loop_lag and results.burst.loop_lag.samples:
        parts.append(f"send loop lag p99 {results.burst.loop_lag.p99 * 1000:.1f} ms (burst);")
    growth = rss_growth(results)
    if growth is not None and results.drain is not None:
        marks = sorted(results.drain.rss_checkpoints)
        parts.append(f"worker RSS {marks[0]:,}→{marks[-1]:,} emails {growth:+.1f}%;")
    if results.submit:
        parts.append(f"submit {results.submit.rate:,.0f} events/s")
    return " ".join(parts).rstrip(";")


def render(results: BenchResults) -> str:
    s = results.settings
    lines = [
        f"mailpipe bench ({results.mode}): {s['processes']} worker processes x {s['threads']} threads, prefetch "
        f"{s['prefetch']}, pool {s['pool_size']}/account, 3 accounts, message {results.message_bytes:,} bytes, "
        f"state Redis max_connections {s['redis_max_connections'] or 'default (100)'}",
        "",
        *main_table(results),
        "",
        *cpu_table(results),
    ]
    lag = loop_lag_table(results)
    if lag:
        lines += ["", *lag]
    rss = rss_lines(results)
    if rss:
        lines += ["", *rss]
    if results.burst:
        lines += ["", f"outcomes (burst): {results.burst.outcomes}"]
    lines += [f"note: {n}" for n in results.notes]
    lines += ["", f"ratio pipeline / raw SMTP: {results.ratio:.3f}", summary_line(results)]
    return "\n".join(lines)
