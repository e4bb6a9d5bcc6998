"""Retention benchmarks: Redis memory held per email after the hot window, and the delivery log at 1M rows.

    ops/bench --retention [--database] [--emails 500000 --hot 60 --dedupe-window 2592000 --warm 10000]
    ops/bench --delivery-log [--rows 1000000 --lag-rate 410 --lag-events 20000]

Drives the status layer directly (accept → sent through the real Lua scripts), not SMTP: on the
shared 2-core machine a full pipeline run of 500k emails takes too long. With ``--database`` the
store runs as a deployment with a database does (delivery-log dedupe, no Redis markers) and the real
archiver (a thread) writes a private PostgreSQL and lets final events' hot keys expire. Private redis-server and
PostgreSQL cluster; never the machine's own.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import redis

from pipeline.models import LeadEvent
from pipeline.state.localredis import LocalRedis
from pipeline.state.status import Retention, StatusStore, Transition


def redis_memory(
    emails: int, hot: int, dedupe_window: int, chunk: int = 2000, database: bool = False, warm: int = 10_000
) -> dict[str, float]:
    """Accept and finish ``emails`` events, wait out the hot window, and print Redis ``used_memory`` over time.

    With ``database``: a private PostgreSQL, the status store in database mode (no dedupe markers; the
    delivery log is asked at accept) and the real archiver (a thread, its consumer group) writing
    the delivery log and letting final events' hot keys expire once their rows are committed."""
    if not database:
        return _redis_memory(emails, hot, dedupe_window, chunk, None, warm)
    from pipeline.db import migrate
    from pipeline.db.engine import make_engine
    from pipeline.db.localpg import LocalPostgres

    cluster = LocalPostgres(fast=True).start()
    try:
        engine = make_engine(cluster.url("postgres"), statement_timeout_ms=600_000)
        migrate.upgrade(engine)
        try:
            return _redis_memory(emails, hot, dedupe_window, chunk, engine, warm)
        finally:
            engine.dispose()
    finally:
        cluster.stop()


def _redis_memory(emails: int, hot: int, dedupe_window: int, chunk: int, engine: Any, warm: int) -> dict[str, float]:
    from pipeline.archive.coldstore import DeliveryLogReader
    from pipeline.archive.consumer import Archiver

    with tempfile.TemporaryDirectory() as tmp, LocalRedis(Path(tmp)) as server:
        client = redis.Redis.from_url(server.url)
        retention = Retention(hot=hot, dedupe_window=dedupe_window, stream_max_age=hot)
        cold = DeliveryLogReader(engine) if engine is not None else None
        store = StatusStore(client, retention=retention, cold=cold)
        stop = threading.Event()
        archiver_thread = None
        if engine is not None:
            archiver = Archiver(redis.Redis.from_url(server.url), engine, consumer="bench", hot=hot, stream_max_age=hot)
            archiver.streams()

            def archive() -> None:
                while not stop.is_set():
                    archiver.run_once(block_ms=200)

            archiver_thread = threading.Thread(target=archive, daemon=True)
            archiver_thread.start()
        empty = _used(client)
        mode = "database (delivery-log dedupe, archiver running)" if engine is not None else "file (Redis dedupe markers)"
        print(f"empty private redis-server: used_memory={empty:,} bytes; hot={hot}s dedupe_window={dedupe_window}s")
        print(f"mode: {mode}; the status layer (accept → sent through the real Lua scripts), not SMTP")
        if warm:
            # Redis allocates some things once (script cache, client buffers, the stream's and the
            # consumer group's structures, key-table sizes): a warm-up round leaves those in place,
            # so the start level is that of a running deployment, not of an empty server.
            print(f"warm-up: {warm:,} emails through the same path, then their hot window")
            _round(client, store, "warm", warm, hot, chunk, engine, verbose=False)
        start = _used(client)
        start_stats = client.memory_stats()
        print(f"start: used_memory={start:,} bytes (after the warm-up: {start - empty:+,} vs empty)")
        peak, end = _round(client, store, "bench", emails, hot, chunk, engine, verbose=True)
        stop.set()
        if archiver_thread is not None:
            archiver_thread.join(timeout=5)
            from sqlalchemy import text

            with engine.connect() as connection:
                logged = connection.execute(text("SELECT count(*) FROM delivery_events WHERE outcome = 'sent'")).scalar_one()
            print(f"delivery log: {logged:,} final rows in PostgreSQL")
        markers = _bucket_keys(client)
        marker_bytes = sum(int(client.memory_usage(k) or 0) for k in client.scan_iter("mailpipe:default:dedupe:*", count=1000))
        per_email = (end - start) / emails
        print(f"end: used_memory={end:,} keys={client.dbsize():,}")
        for key in sorted(client.scan_iter("*", count=1000)):
            if not key.startswith(b"mailpipe:default:dedupe:"):
                kind: Any = client.type(key)
                print(f"  key {key.decode()}: {kind.decode()}, {client.memory_usage(key, samples=0) or 0:,} bytes")
        stats = client.memory_stats()
        print(
            "  MEMORY STATS start → end: "
            + ", ".join(f"{k} {start_stats.get(k, 0):,} → {stats.get(k, 0):,}" for k in ("overhead.total", "dataset.bytes"))
        )
        print(f"  dedupe buckets: {markers:,} keys, {marker_bytes:,} bytes by MEMORY USAGE")
        print(f"summary: start {start:,}  peak {peak:,}  end {end:,} bytes (empty server {empty:,})")
        print(f"bytes per email held after the window: {per_email:.1f} (target <= 150)")
        print(
            f"end vs start: {100 * (end - start) / start:+.1f}% (target within 10 %); "
            f"end vs the empty server: {100 * (end - empty) / empty:+.1f}%"
        )
        if markers:
            print(f"end minus the dedupe buckets vs start: {100 * (end - marker_bytes - start) / start:+.1f}%")
        return {
            "empty": empty,
            "start": start,
            "peak": peak,
            "end": end,
            "bytes_per_email": per_email,
            "marker_bytes": marker_bytes,
        }


def _round(
    client: redis.Redis, store: StatusStore, prefix: str, emails: int, hot: int, chunk: int, engine: Any, *, verbose: bool
) -> tuple[int, int]:
    """Feed ``emails`` events (accept → sent), let the archiver catch up, wait out the hot window and the
    expiry; returns Redis's peak and settled used_memory."""
    from pipeline.observe.snapshot import archive_backlog

    def say(line: str) -> None:
        if verbose:
            print(f"  t={time.monotonic() - began:6.0f}s  {line}")

    peak = _used(client)
    began = time.monotonic()
    step = max(chunk, (emails // 10) // chunk * chunk)
    for first in range(0, emails, chunk):
        batch = [
            LeadEvent(event_id=f"{prefix}-{i:08d}", to=f"lead{i}@example.com", campaign="bench", subject="Hello", text="Hi " * 40)
            for i in range(first, min(first + chunk, emails))
        ]
        store.accept(batch)
        store.record([Transition("default", e.event_id, "sent", {"stage": "classify", "code": 250}) for e in batch])
        peak = max(peak, _used(client))
        done = first + len(batch)
        if done % step == 0 or done == emails:
            say(f"{done:>9,} emails final  used_memory={_used(client):>13,}")
    fed = time.monotonic() - began
    if verbose:
        print(f"fed {emails:,} emails in {fed:.0f}s ({emails / fed:,.0f}/s); used_memory so far at most {peak:,}")
    if engine is not None:
        while (backlog := archive_backlog(client)) > 0:
            peak = max(peak, _used(client))
            say(f"archiver backlog {backlog:>9,}  used_memory={_used(client):>13,}")
            time.sleep(5)
        say(f"archiver caught up; peak used_memory={peak:,}")
    wait_until = began + max(fed, hot) + 5
    while time.monotonic() < wait_until:
        time.sleep(min(10.0, max(0.0, wait_until - time.monotonic())))
        say(f"waiting out the hot window   used_memory={_used(client):>13,}")
    store.record([Transition("default", "x", "sent", {})])  # without a database a final transition trims by age
    deadline = time.monotonic() + 180
    while client.dbsize() > _bucket_keys(client) + 20 and time.monotonic() < deadline:
        time.sleep(2)  # active expiry works through the expired keys
        say(f"expiring: keys={client.dbsize():,}  used_memory={_used(client):>13,}")
    client.xtrim("mailpipe:default:events", minid=int((time.time() - hot) * 1000), approximate=False)
    settled, end = time.monotonic() + 90, _used(client)
    while time.monotonic() < settled:  # Redis shrinks its key tables in its cron, a little later
        time.sleep(5)
        previous, end = end, _used(client)
        if previous - end < previous * 0.002:
            break
    return peak, end


def _used(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def _bucket_keys(client: redis.Redis) -> int:
    return sum(1 for _ in client.scan_iter("mailpipe:*:dedupe:*", count=1000))


def delivery_log(rows: int, lag_rate: float = 0.0, lag_events: int = 0) -> None:
    from sqlalchemy import text

    from pipeline.archive import partitions
    from pipeline.control import events
    from pipeline.db import migrate
    from pipeline.db.engine import make_engine
    from pipeline.db.localpg import LocalPostgres

    cluster = LocalPostgres(fast=True).start()
    try:
        engine = make_engine(cluster.url("postgres"), statement_timeout_ms=3_600_000)
        migrate.upgrade(engine)
        today = dt.datetime.now(dt.UTC).date()
        days = [today - dt.timedelta(days=d) for d in range(12)]
        with engine.begin() as connection:
            partitions.ensure_days(connection, days)
        began = time.monotonic()
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO delivery_events (tenant, event_id, created_at, updated_at, final_at, state, outcome, campaign,"
                    " list, sender, recipient, account, route, reason, last_reply, attempts, message_id) "
                    "SELECT 't' || (g % 20), 'ev-' || g, now() - (g % 864000) * interval '1 second', now(), now(),"
                    " o, o, 'camp-' || (g % 50), 'list-' || (g % 7), 'sales@acme.example', 'lead' || g || '@example.com',"
                    " 'acct-' || (g % 5), 'r1', CASE WHEN o = 'failed' THEN 'expired' ELSE NULL END, '250 2.0.0 ok', 1,"
                    " '<' || md5(g::text) || '@acme.example>' "
                    "FROM generate_series(1, :n) g, LATERAL (SELECT CASE WHEN g % 10 = 0 THEN 'failed' ELSE 'sent' END AS o) x"
                ),
                {"n": rows},
            )
            connection.execute(text("ANALYZE delivery_events"))
        print(f"loaded {rows:,} rows in {time.monotonic() - began:.0f}s")
        day = today - dt.timedelta(days=2)
        since = dt.datetime.combine(day, dt.time(), dt.UTC)
        filters = events.EventFilter(campaign="camp-0", outcome="failed", since=since, until=since + dt.timedelta(days=1))
        timings = []
        for _ in range(7):
            t0 = time.perf_counter()
            page = events.listing(engine, "t0", filters, limit=100)
            timings.append((time.perf_counter() - t0) * 1000)
        print(
            f"filtered query (tenant t0, campaign camp-0, one day, failed): {len(page.events)} rows, "
            f"median {sorted(timings)[3]:.1f} ms, max {max(timings):.1f} ms"
        )
        with engine.begin() as connection:
            connection.execute(text("UPDATE delivery_events SET tenant = 'big' WHERE true"))
            connection.execute(text("ANALYZE delivery_events"))
        for run in range(1, 4):
            t0 = time.perf_counter()
            total = size = 0
            for chunk in events.export_csv(engine, "big", events.EventFilter()):
                total += chunk.count(b"\n")
                size += len(chunk)
            elapsed = time.perf_counter() - t0
            print(
                f"CSV export run {run}: {total - 1:,} rows ({size / 1e6:,.0f} MB) in {elapsed:.1f}s = "
                f"{(total - 1) / elapsed:,.0f} rows/s"
            )
        dedupe_lookup(engine, rows)
        if lag_rate:
            archive_lag(engine, lag_events, lag_rate)
        engine.dispose()
    finally:
        cluster.stop()


def dedupe_lookup(engine: Any, rows: int) -> None:
    """The accept-time delivery-log query (``DeliveryLogReader.known``) over ``rows`` rows, a 500-event batch."""
    from sqlalchemy import text

    from pipeline.archive.coldstore import _KNOWN, DeliveryLogReader

    reader = DeliveryLogReader(engine)
    since = time.time() - 30 * 86_400
    batch = [("big", f"ev-{g}") for g in range(1, rows + 1, max(1, rows // 250))][:250]
    batch += [("big", f"new-{g}") for g in range(500 - len(batch))]
    timings, found = [], set()
    for _ in range(7):
        t0 = time.perf_counter()
        found = reader.known(batch, since)
        timings.append((time.perf_counter() - t0) * 1000)
    with engine.connect() as connection:
        plan = connection.execute(
            text("EXPLAIN " + str(_KNOWN.compile(compile_kwargs={"literal_binds": False}))),
            {"tenants": ["big"], "ids": [e for _, e in batch], "since": dt.datetime.fromtimestamp(since, dt.UTC)},
        ).all()
    scans = Counter(line.strip(" ->").split(" using ")[0].split(" on ")[0] for (line,) in plan if " on " in line)
    print(
        f"dedupe lookup (500 event_ids, {len(found)} known) over {rows:,} rows: median {sorted(timings)[3]:.1f} ms, "
        f"max {max(timings):.1f} ms; plan: {', '.join(f'{n} x {kind}' for kind, n in sorted(scans.items()))} (one per partition)"
    )


def archive_lag(engine: Any, emails: int, rate: float) -> None:
    """Transitions at ``rate`` per second through the status scripts; the archiver (a thread, its real
    consumer group) writes them; a poller sees each row appear. Lag = first seen - the final transition."""
    import threading

    from sqlalchemy import text

    from pipeline.archive.consumer import Archiver

    with tempfile.TemporaryDirectory() as tmp, LocalRedis(Path(tmp)) as server:
        client = redis.Redis.from_url(server.url)
        store = StatusStore(client)
        finished: dict[str, float] = {}
        visible: dict[str, float] = {}
        stop = threading.Event()

        def archive() -> None:
            archiver = Archiver(redis.Redis.from_url(server.url), engine, consumer="bench")
            while not stop.is_set():
                archiver.run_once(block_ms=200)

        def poll() -> None:
            while not stop.is_set() or len(visible) < len(finished):
                with engine.connect() as connection:
                    rows = connection.execute(
                        text("SELECT event_id FROM delivery_events WHERE tenant = 'lag' AND outcome = 'sent'")
                    )
                    now = time.time()
                    for (event_id,) in rows:
                        visible.setdefault(event_id, now)
                time.sleep(0.05)
                if stop.is_set() and time.time() > deadline:
                    break

        deadline = float("inf")
        threads = [threading.Thread(target=archive, daemon=True), threading.Thread(target=poll, daemon=True)]
        for thread in threads:
            thread.start()
        tick, began = 0.05, time.monotonic()
        per_tick = max(1, int(rate * tick))
        for first in range(0, emails, per_tick):
            batch = [
                LeadEvent(event_id=f"lag-{i}", tenant="lag", to=f"lead{i}@example.com", subject="Hi", text="Hello")
                for i in range(first, min(first + per_tick, emails))
            ]
            store.accept(batch)
            store.record([Transition("lag", e.event_id, "sent", {"stage": "classify"}) for e in batch])
            at = time.time()
            finished.update((e.event_id, at) for e in batch)
            time.sleep(max(0.0, began + (first + per_tick) / rate - time.monotonic()))
        deadline = time.time() + 30
        while len(visible) < emails and time.time() < deadline:
            time.sleep(0.2)
        stop.set()
        lags = sorted(visible[e] - finished[e] for e in finished if e in visible)
        if not lags:
            print("archive lag: no row became visible")
            return
        p50, p99 = lags[len(lags) // 2], lags[min(len(lags) - 1, int(len(lags) * 0.99))]
        print(
            f"archive lag at {rate:,.0f} transitions/s ({emails:,} events, {len(lags):,} rows seen): "
            f"p50 {p50 * 1000:,.0f} ms, p99 {p99 * 1000:,.0f} ms, max {lags[-1] * 1000:,.0f} ms (poll every 50 ms)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ops/bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--retention", action="store_true")
    parser.add_argument("--delivery-log", action="store_true")
    parser.add_argument("--emails", type=int, default=500_000)
    parser.add_argument("--hot", type=int, default=60)
    parser.add_argument("--dedupe-window", type=int, default=30 * 86_400, help="seconds (default 30 days)")
    parser.add_argument("--database", action="store_true", help="with --retention: a deployment with a database")
    parser.add_argument("--warm", type=int, default=10_000, help="with --retention: warm-up emails before the start level")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--lag-rate", type=float, default=410.0, help="transitions/s for the archive lag (the landed burst rate)")
    parser.add_argument("--lag-events", type=int, default=20_000)
    args = parser.parse_args(argv)
    if args.retention:
        redis_memory(args.emails, args.hot, args.dedupe_window, database=args.database, warm=args.warm)
    if args.delivery_log:
        delivery_log(args.rows, args.lag_rate, args.lag_events)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
