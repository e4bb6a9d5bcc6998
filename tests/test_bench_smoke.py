"""The benchmark harness end to end at a tiny N: real redis-server, smtp-sink and worker processes.

No timing assertions: the point is that every phase of `ops/bench` runs and reports what it measured.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from pipeline.bench.latency import Percentiles, percentile
from pipeline.bench.profiling import library_of, parse_collapsed, stage_of, summarise
from pipeline.bench.report import render
from pipeline.bench.run import TINY, run_bench, to_json
from pipeline.bench.scenario import Settings, lead_event
from pipeline.bench.sink import find_smtp_sink
from pipeline.models import parse_event

needs_sink = pytest.mark.skipif(find_smtp_sink() is None, reason="smtp-sink (Debian package postfix) is not installed")


@pytest.mark.slow
@needs_sink
def test_a_tiny_benchmark_run_measures_every_phase_and_ends_with_the_summary_line(tmp_path: Path) -> None:
    said: list[str] = []
    results = run_bench(tmp_path / "bench", TINY, mode="tiny", settings=Settings(threads=4), say=said.append)

    assert results.raw is not None and results.raw.emails == TINY.raw_emails and results.raw.rate > 0
    assert results.burst is not None and results.burst.outcomes == {"sent": TINY.burst_emails}
    assert results.burst.rate > 0 and results.burst.latency.p99 >= results.burst.latency.p50 > 0
    assert results.burst.cpu.workers > 0 and results.burst.cpu.redis > 0
    assert len(results.burst.peak_rss_kib) == 2 and min(results.burst.peak_rss_kib.values()) > 10_000
    assert results.paced is not None and results.paced.emails > 0 and set(results.paced.outcomes) == {"sent"}
    assert results.submit is not None and results.submit.events == TINY.submit_events and results.submit.rate > 0
    assert results.drain is not None and results.drain.outcomes == {"sent": TINY.submit_events}
    assert sorted(results.drain.rss_checkpoints) == list(TINY.rss_checkpoints)
    assert 0 < results.ratio < math.inf
    assert [line.split()[0] for line in said] == ["1/5", "2/5", "3/5", "4/5", "5/5"]

    table = render(results).splitlines()
    assert table[-1].startswith("bench tiny: pipeline ") and "x raw" in table[-1] and "submit" in table[-1]
    assert any(line.startswith("| 1. raw aiosmtplib") for line in table)
    assert any(line.startswith("| 3. `mailpipe submit`") for line in table)
    assert '"ratio"' in to_json(results)


def test_the_benchmark_events_are_valid_lead_events_spread_over_the_three_routes() -> None:
    events = [parse_event(lead_event("x", i)) for i in range(3)]
    assert [(e.list_name, e.campaign) for e in events] == [("nordics", None), (None, "outreach"), (None, None)]


def test_percentiles_use_the_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert Percentiles.of(values) == Percentiles(50.0, 95.0, 99.0)
    assert percentile([3.0], 99) == 3.0
    assert math.isnan(percentile([], 50))


def test_collapsed_stacks_are_attributed_to_their_stage_and_library(tmp_path: Path) -> None:
    raw = tmp_path / "worker.txt"
    raw.write_text(
        "run (/v/site-packages/dramatiq/worker.py:10);handle (/w/pipeline/stages/send.py:90);"
        "build_message (/w/pipeline/smtp/mime.py:100);__getitem__ (/py/lib/python3.11/email/headerregistry.py:5) 3\n"
        "run (/v/site-packages/dramatiq/worker.py:10);_fetch (/v/site-packages/dramatiq/brokers/redis.py:300) 1\n"
        "EventLoopThread.run (/v/site-packages/dramatiq/asyncio.py:90);_run (/py/asyncio/events.py:80);"
        "ScriptBatcher._run (/w/pipeline/state/script_batcher.py:75) 2\n"
    )
    stacks = parse_collapsed(raw.read_text().splitlines())
    assert stage_of(stacks[0][0]) == "send" and library_of(stacks[0][0]) == "MIME building (stdlib email)"
    assert stage_of(stacks[1][0]) == "Dramatiq consume/ack"
    assert stage_of(stacks[2][0]) == "send (event loop)"
    summary = summarise([raw])
    assert summary.samples == 6 and summary.share(summary.inclusive_ours["build_message (pipeline/smtp/mime.py)"]) == 50.0
