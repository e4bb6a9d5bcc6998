"""`mailpipe archive`: the events stream into the delivery log in PostgreSQL.

Its own command rather than a thread of `mailpipe worker`: the send path never waits on (or shares
a GIL with) database writes, a worker runs with no database at all, and archivers scale apart from
senders — start several (here or on other hosts); they share one consumer group.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
from typing import Annotated

import typer

from pipeline.cli.core import ConfigOption, load_or_exit


def archive(
    config: ConfigOption = None,
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="stream entries per transaction")] = 1000,
    claim_idle: Annotated[
        float, typer.Option(min=0.1, help="seconds before another consumer's pending entries are taken over")
    ] = 30.0,
    once: Annotated[bool, typer.Option("--once", help="archive what is there now, then exit")] = False,
) -> None:
    """Archive every transition into PostgreSQL (at-least-once, idempotent) and keep the daily partitions."""
    import redis

    from pipeline.archive.consumer import Archiver
    from pipeline.db.engine import make_engine
    from pipeline.db.schema_check import require_current_schema

    loaded = load_or_exit(config)
    url = loaded.database.resolved_url()
    if url is None:
        typer.echo("error: the delivery log needs a database: set [database] url or MAILPIPE_DATABASE_URL", err=True)
        raise typer.Exit(2)
    engine = make_engine(url, pool_size=2)
    require_current_schema(engine)
    archiver = Archiver(
        redis.Redis.from_url(loaded.redis_url),
        engine,
        consumer=f"{socket.gethostname()}:{os.getpid()}",
        batch=batch,
        claim_idle_ms=int(claim_idle * 1000),
        keep_days=loaded.retention.delivery_log,
        hot=loaded.retention.hot,
        stream_max_age=loaded.retention.stream_max_age,
    )
    if once:
        archiver.maintain()
        total = 0
        while (report := archiver.run_once(block_ms=100)).entries:
            total += report.entries
        typer.echo(f"archived {total} entries")
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        archiver.run(stop)
    except KeyboardInterrupt:
        stop.set()


def register(app: typer.Typer) -> None:
    app.command()(archive)
