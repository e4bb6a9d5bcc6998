"""Day windows (bucket and next local midnight) are computed once per minute and must equal the direct answer."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from pipeline.limits.quota import Window, bucket, next_reset

ZONES = ["UTC", "Europe/Copenhagen", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "Pacific/Chatham"]


def direct(now: float, timezone: str) -> tuple[str, float]:
    zone = ZoneInfo(timezone)
    today = datetime.fromtimestamp(now, zone).date()
    return today.strftime("%Y%m%d"), datetime.combine(today + timedelta(days=1), datetime.min.time(), zone).timestamp()


@pytest.mark.parametrize("timezone", ZONES)
def test_day_bucket_and_reset_match_zoneinfo_around_midnights_and_dst_changes(timezone: str) -> None:
    rng = random.Random(timezone)
    zone = ZoneInfo(timezone)
    instants: list[float] = []
    for day in ("2026-03-08", "2026-03-29", "2026-04-05", "2026-10-04", "2026-10-25", "2026-11-01", "2026-12-31"):
        midnight = datetime.fromisoformat(day).replace(tzinfo=zone).timestamp()
        instants += [midnight + offset for offset in (-61, -60, -1, -0.001, 0, 0.5, 59.999, 60, 3 * 3600, 86399)]
    instants += [rng.uniform(1.7e9, 1.9e9) for _ in range(500)]
    for now in instants:
        assert (bucket(Window.DAY, now, timezone), next_reset(Window.DAY, now, timezone)) == direct(now, timezone), (
            now,
            timezone,
        )
        assert next_reset(Window.DAY, now, timezone) > now
