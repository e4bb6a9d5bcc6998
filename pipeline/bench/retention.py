"""Retention benchmarks: Redis memory held per email after the hot window, and the delivery log at 1M rows.

    python -m pipeline.bench.retention --retention [--emails 500000 --hot 60]
    python -m pipeline.bench.retention --delivery-log [--rows 1000000]

Drives the status layer directly (accept → sent through the real Lua scripts), not SMTP: on the
shared 2-core machine a full pipeline run of 500k emails takes too long. Private redis-server and
PostgreSQL cluster; never the machine's own.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

import redis

from pipeline.models import LeadEvent
from pipeline.state.localredis import LocalRedis
from pipeline.state.status import Retention, StatusStore, Transition


def redis_memory(emails: int, hot: int, chunk: int = 2000) -> None:
    with tempfile.TemporaryDirectory() as tmp, LocalRedis(Path(tmp)) as server:
        client = redis.Redis.from_url(server.url)
        store = StatusStore(client, retention=Retention(hot=hot, dedupe_window=30 * 86_400, stream_max_age=hot))
        start = int(client.info("memory")["used_memory"])
        peak = start
        began = time.monotonic()
        for first in range(0, emails, chunk):
            batch = [
                LeadEvent(
                    event_id=f"bench-{i:08d}", to=f"lead{i}@example.com", campaign="bench", subject="Hello", text="Hi " * 40
                )
                for i in range(first, min(first + chunk, emails))
            ]
            store.accept(batch)
            store.record([Transition("default", e.event_id, "sent", {"stage": "classify", "code": 250}) for e in batch])
            peak = max(peak, int(client.info("memory")["used_memory"]))
        fed = time.monotonic() - began
        print(f"fed {emails} emails in {fed:.0f}s; used_memory start={start:,} peak={peak:,}")
        time.sleep(max(0.0, hot - (time.monotonic() - began)) + 5)
        store.record([Transition("default", "x", "sent", {})])  # trims the stream by age (a final transition)
        deadline = time.monotonic() + 120
        while client.dbsize() > emails + 50 and time.monotonic() < deadline:
            time.sleep(2)  # active expiry works through the expired keys
        client.xtrim("mailpipe:default:events", minid=int((time.time() - hot) * 1000), approximate=False)
        end = int(client.info("memory")["used_memory"])
        print(f"after the window: used_memory end={end:,} keys={client.dbsize():,}")
        print(f"bytes per email held after the window: {(end - start) / emails:.1f}")
        print(f"end vs start: {100 * (end - start) / start:+.1f}% (the dedupe markers are what remains)")


def delivery_log(rows: int) -> None:
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
        t0 = time.perf_counter()
        total = 0
        for chunk in events.export_csv(engine, "big", events.EventFilter()):
            total += chunk.count(b"\n")
        elapsed = time.perf_counter() - t0
        print(f"CSV export: {total - 1:,} rows in {elapsed:.1f}s = {(total - 1) / elapsed:,.0f} rows/s")
        engine.dispose()
    finally:
        cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--retention", action="store_true")
    parser.add_argument("--delivery-log", action="store_true")
    parser.add_argument("--emails", type=int, default=500_000)
    parser.add_argument("--hot", type=int, default=60)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    if args.retention:
        redis_memory(args.emails, args.hot)
    if args.delivery_log:
        delivery_log(args.rows)


if __name__ == "__main__":
    main()
