"""The benchmark harness end to end at a tiny N: real redis-server, smtp-sink and worker processes.

No timing assertions: the point is that every phase of `ops/bench` runs and reports what it measured.
"""

from __future__ import annotations

import math
import os
import socket
from pathlib import Path

import pytest
from eventually import eventually

from pipeline.bench.__main__ import main as bench_main
from pipeline.bench.latency import Percentiles, percentile
from pipeline.bench.procstats import TCP_ESTABLISHED, connections_to
from pipeline.bench.profiling import library_of, parse_collapsed, stage_of, summarise
from pipeline.bench.report import render
from pipeline.bench.run import TINY, run_bench, to_json
from pipeline.bench.scenario import Settings, lead_event, lead_events
from pipeline.bench.sink import find_smtp_sink
from pipeline.bench.tenants import TENANTS_TINY, render_tenants, run_tenants, tenants_json
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
    assert results.burst.loop_lag is not None and results.burst.loop_lag.samples > 0 and results.burst.loop_lag.p99 >= 0
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


@pytest.mark.slow
@needs_sink
def test_a_tiny_tenants_run_sends_every_event_under_its_own_tenant_with_bounded_sessions(tmp_path: Path) -> None:
    said: list[str] = []
    results = run_tenants(
        tmp_path / "bench",
        TENANTS_TINY,
        50,
        mode="tiny",
        settings=Settings(threads=4),
        max_cached=10,  # fewer than the tenants: the LRU evicts and reloads snapshots
        max_sessions=20,
        distinct_logins=True,  # 150 accounts whose sessions cannot be shared: the cap has work to do
        say=said.append,
    )

    events = TENANTS_TINY.burst_emails
    assert results.first_touch is not None and results.first_touch.outcomes == {"sent": 50}  # one per tenant
    assert results.raw is not None and results.raw.rate > 0
    # Outcomes are read from each event's history under its own tenant's keys: all final there.
    assert results.single is not None and results.single.outcomes == {"sent": events}
    assert results.multi is not None and results.multi.outcomes == {"sent": events}
    assert results.single_paced is not None and set(results.single_paced.outcomes) == {"sent"}
    assert results.multi_paced is not None and set(results.multi_paced.outcomes) == {"sent"}
    assert results.multi.latency.p99 >= results.multi.latency.p50 > 0
    assert len(results.multi.peak_rss_kib) == 2 and min(results.multi.peak_rss_kib.values()) > 10_000
    # Sessions are measured per worker from the kernel's socket tables; going over the cap is reported, not hidden.
    assert len(results.multi.peak_sessions) == 2 and max(results.multi.peak_sessions.values()) > 0
    over = [pid for r in (results.single, results.multi) for pid, peak in r.peak_sessions.items() if peak > 20]
    assert sum(line.startswith("over the session cap:") for line in render_tenants(results).splitlines()) >= len(over)
    assert 0 < results.tenants_ratio < math.inf and 0 < results.single_ratio < math.inf
    assert [line.split()[0] for line in said] == ["1/6", "2/6", "3/6", "4/6", "5/6", "6/6"]

    text = render_tenants(results).splitlines()
    assert any(line.startswith("| 1 tenant, burst") for line in text)
    assert any(line.startswith("| 50 tenants, burst") for line in text)
    assert any(line.startswith("| 50 tenants, first touch") for line in text)
    assert "every account its own login" in text[0]
    assert text[-1].startswith("bench tenants tiny: 1 tenant ") and "x 1 tenant" in text[-1] and "(cap 20)" in text[-1]
    assert '"tenants_ratio"' in tenants_json(results)


def test_tenants_spread_round_robin_and_default_stays_implicit() -> None:
    spread = [parse_event(e).tenant for e in lead_events("x", 0, 5, tenants=3)]
    assert spread == ["t00000", "t00001", "t00002", "t00000", "t00001"]
    assert "tenant" not in lead_event("x", 0) and parse_event(lead_event("x", 0)).tenant == "default"


def test_bench_refuses_a_tenant_count_below_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_main(["--tenants", "0"]) == 2
    assert "--tenants" in capsys.readouterr().err


def test_held_sockets_are_counted_per_process_and_remote_port_half_closed_ones_too() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
        try:
            assert connections_to(os.getpid(), port) == 3
            clients.pop().close()
            assert connections_to(os.getpid(), port) == 2
            accepted, _ = server.accept()
            accepted.close()  # the server hangs up first: our end is half closed, still held
            assert eventually(lambda: connections_to(os.getpid(), port, TCP_ESTABLISHED), lambda n: n == 1) == 1
            assert connections_to(os.getpid(), port) == 2
            assert connections_to(os.getpid(), port + 1 if port < 65535 else port - 1) == 0
        finally:
            for client in clients:
                client.close()


@needs_sink
def test_the_send_loop_bench_sees_no_blocking_redis_call_on_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.bench import send_loop

    monkeypatch.setattr(send_loop, "THREADS", 2)
    monkeypatch.setattr(send_loop, "BATCHES", 2)
    found = send_loop.run(tmp_path / "send-loop")
    assert found["emails"] == 400 and found["rate"] > 0
    assert found["blocking_redis_calls_on_loop"] == {"calls": 0, "ms": 0}
    assert found["loop_lag_ms"]["samples"] > 0


@pytest.mark.slow
@needs_sink
def test_a_tiny_archiver_run_compares_bursts_with_and_without_mailpipe_archive_and_reads_the_lag(tmp_path: Path) -> None:
    from pipeline.bench.archive_run import ARCHIVE_TINY, archive_json, render_archive, run_archiver_bench

    said: list[str] = []
    results = run_archiver_bench(tmp_path / "bench", ARCHIVE_TINY, mode="tiny", settings=Settings(threads=4), say=said.append)

    assert results.order == ["without", "with"]
    assert [r.outcomes for r in results.without + results.with_archiver] == [{"sent": ARCHIVE_TINY.burst_emails}] * 2
    assert results.lag["rows"] == ARCHIVE_TINY.burst_emails  # every final transition of the burst with it archived
    assert 0 <= results.lag["p50"] <= results.lag["p99"] <= results.lag["max"]
    assert 0 < results.ratio < math.inf and len(results.catch_up) == 1
    text = render_archive(results)
    assert "| burst 2, with archiver |" in text and "archive lag (final transition → row committed)" in text
    assert '"ratio"' in archive_json(results)
