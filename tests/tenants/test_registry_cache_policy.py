"""The snapshot cache's eviction policy when every tenant is active at once (issue 17: 10,000 tenants).

The source here counts loads instead of reading PostgreSQL: what is under test is which snapshots the
cache keeps, not how they are read (tests/control/test_registry_snapshots.py reads the real tables).
"""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.registry.cache import Registry
from pipeline.registry.refs import DEFAULT_TENANT
from pipeline.registry.snapshot import TenantSnapshot


class CountingSource:
    def __init__(self) -> None:
        self.alone: list[str] = []
        self.batched: list[str] = []

    def load(self, tenant: str) -> TenantSnapshot:
        self.alone.append(tenant)
        return TenantSnapshot(tenant, 1)

    def load_many(self, tenants: Iterable[str]) -> list[TenantSnapshot]:
        wanted = list(tenants)
        self.batched += wanted
        return [TenantSnapshot(t, 1) for t in wanted]

    def versions(self, tenants: Iterable[str]) -> dict[str, int]:
        return dict.fromkeys(tenants, 1)


def registry_over(source: CountingSource, max_tenants: int) -> Registry:
    registry = Registry(source, max_tenants=max_tenants)
    registry.checked_in_background = True  # no version checks: only the loads are counted
    return registry


def stage_batch(registry: Registry, tenants: list[str]) -> None:
    """What a stage does with a batch: prefetch its tenants (and the platform's), then look each up."""
    registry.prefetch([*tenants, DEFAULT_TENANT])
    for tenant in tenants:
        registry.tenant(tenant)


def test_a_full_cache_never_evicts_the_batch_it_is_loading_for() -> None:
    # One tenant more than the cache holds, visited round-robin: the worst case for an LRU. Before the
    # prefetch counted the batch's held tenants as used, storing the one missing snapshot evicted the
    # batch's own oldest tenant, whose lookup then loaded it alone and evicted the next: a load per email.
    source = CountingSource()
    registry = registry_over(source, max_tenants=100)
    tenants = [f"t{i:03d}" for i in range(101)]
    for start in range(0, 101, 10):
        stage_batch(registry, tenants[start : start + 10])
    source.alone.clear()
    source.batched.clear()
    for _ in range(3):
        for start in range(0, 101, 10):
            stage_batch(registry, tenants[start : start + 10])
    assert source.alone == []
    assert len(source.batched) <= 3 * 11  # at most the one missing tenant per batch, in the batch's query


def test_the_platform_tenant_is_always_held_and_not_counted() -> None:
    source = CountingSource()
    registry = registry_over(source, max_tenants=3)
    registry.tenant(DEFAULT_TENANT)
    for slug in ("a", "b", "c", "d", "e"):
        registry.tenant(slug)
    assert sorted(registry.cached()) == ["c", "d", DEFAULT_TENANT, "e"]  # three besides the platform's
    registry.tenant(DEFAULT_TENANT)
    assert source.alone.count(DEFAULT_TENANT) == 1


def test_as_many_tenants_as_the_cap_are_loaded_once_however_often_they_come_round() -> None:
    source = CountingSource()
    registry = registry_over(source, max_tenants=200)
    tenants = [f"t{i:03d}" for i in range(200)]
    for _ in range(4):
        for start in range(0, 200, 25):
            stage_batch(registry, tenants[start : start + 25])
    assert sorted(source.batched) == sorted([*tenants, DEFAULT_TENANT]) and source.alone == []
