"""Submit→250 latency from the status store's own timestamps (no client-side clocks or polling).

Each event's history starts with the `accepted` entry written at submit and ends with the
final entry classify writes right after the server's 250: the gap between their `at`
timestamps is the latency (classify's hop included, so it is an upper bound by one hop).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import redis

from pipeline.models import FINAL_OUTCOMES
from pipeline.state.keys import history

CHUNK = 2000


@dataclass
class Timings:
    accepted_at: list[float]
    final_at: list[float]
    outcomes: Counter[str]

    @property
    def latencies(self) -> list[float]:
        return [f - a for a, f in zip(self.accepted_at, self.final_at, strict=True)]

    @property
    def last_final(self) -> float:
        return max(self.final_at)


def read_timings(
    client: redis.Redis, event_ids: Sequence[str], tenant: str = "default", tenants: Sequence[str] | None = None
) -> Timings:
    """Timings of `event_ids`, all of `tenant`, or each of its own tenant when `tenants` (one per id) is given."""
    if tenants is not None and len(tenants) != len(event_ids):
        raise ValueError(f"read_timings: {len(tenants)} tenants for {len(event_ids)} event ids")
    owners = tenants if tenants is not None else [tenant] * len(event_ids)
    accepted: list[float] = []
    final: list[float] = []
    outcomes: Counter[str] = Counter()
    for start in range(0, len(event_ids), CHUNK):
        pipe = client.pipeline(transaction=False)
        for owner, event_id in zip(owners[start : start + CHUNK], event_ids[start : start + CHUNK], strict=True):
            pipe.lrange(history(owner, event_id), 0, -1)
        for entries in pipe.execute():
            parsed = [json.loads(e) for e in entries]
            first = next((e for e in parsed if e.get("state") == "accepted"), None)
            last = next((e for e in reversed(parsed) if e.get("state") in FINAL_OUTCOMES), None)
            if first is None or last is None:
                outcomes["not final"] += 1
                continue
            outcomes[last["state"]] += 1
            accepted.append(float(first["at"]))
            final.append(float(last["at"]))
    return Timings(accepted, final, outcomes)


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Percentiles:
    p50: float
    p95: float
    p99: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Percentiles:
        return cls(percentile(values, 50), percentile(values, 95), percentile(values, 99))
