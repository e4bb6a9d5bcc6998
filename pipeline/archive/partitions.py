"""Daily range partitions of the delivery log: created ahead of need, dropped whole past retention."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable

from sqlalchemy import Connection, text

PARTITIONED = ("delivery_events", "delivery_history")
_CHILD = re.compile(r"^(delivery_events|delivery_history)_p(\d{8})$")


def _name(table: str, day: dt.date) -> str:
    return f"{table}_p{day:%Y%m%d}"


def ensure_days(connection: Connection, days: Iterable[dt.date]) -> int:
    """Create the partitions of these (UTC) days that are missing; returns how many were created."""
    created = 0
    existing = set(existing_partitions(connection))
    for day in sorted(set(days)):
        for table in PARTITIONED:
            name = _name(table, day)
            if name in existing:
                continue
            start = dt.datetime.combine(day, dt.time(), dt.UTC)
            end = start + dt.timedelta(days=1)
            connection.execute(
                text(
                    f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {table} "
                    f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
                )
            )
            created += 1
    return created


def existing_partitions(connection: Connection) -> list[str]:
    rows = connection.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = ANY(:parents)"
        ),
        {"parents": list(PARTITIONED)},
    )
    return sorted(r[0] for r in rows)


def drop_older_than(connection: Connection, keep_days: int, today: dt.date | None = None) -> list[str]:
    """Drop every partition whose whole day is older than ``keep_days`` days (no row-by-row DELETE)."""
    today = today or dt.datetime.now(dt.UTC).date()
    oldest_kept = today - dt.timedelta(days=keep_days)
    dropped = []
    for name in existing_partitions(connection):
        match = _CHILD.match(name)
        if match and dt.datetime.strptime(match.group(2), "%Y%m%d").date() < oldest_kept:
            connection.execute(text(f"DROP TABLE IF EXISTS {name}"))
            dropped.append(name)
    return dropped


def maintain(connection: Connection, keep_days: int, today: dt.date | None = None) -> list[str]:
    """Today's and tomorrow's partitions exist, and the expired ones are gone."""
    today = today or dt.datetime.now(dt.UTC).date()
    ensure_days(connection, [today, today + dt.timedelta(days=1)])
    return drop_older_than(connection, keep_days, today)
