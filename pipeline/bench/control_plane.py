"""`ops/bench --control-plane [--tenants N]`: tenants x 3 accounts created through the API on a private PostgreSQL.

Reports creations per second, GET p99, the database size and the plans of the hot lookups. The API
runs in-process (httpx's ASGI transport: no sockets; ``--concurrency`` tenants created at once), so
the figures are the app and the database (fsync on), not the network.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from typing import Any

import httpx
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import text

from pipeline.control.context import ControlContext
from pipeline.control.crypto import Keyring, MasterKey
from pipeline.control.hostguard import HostPolicy
from pipeline.control.verify_service import Verifier
from pipeline.db import migrate
from pipeline.db.engine import make_engine
from pipeline.db.localpg import LocalPostgres
from pipeline.http.control import routers
from pipeline.plugin_host.manager import get_plugin_manager

TOKEN = "bench-admin-token-0123456789"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


HOT_QUERIES = {
    "tenant by slug (every request)": "SELECT id FROM tenants WHERE slug = 't005000'",
    "account by name": "SELECT * FROM smtp_accounts WHERE tenant_id = 5000 AND name = 'acct-1'",
    "a tenant's accounts": "SELECT * FROM smtp_accounts WHERE tenant_id = 5000 ORDER BY name",
    "tenant key by id": "SELECT * FROM api_keys WHERE key_id = 'abcdefghijkl'",
    "a tenant's audit, newest first": "SELECT * FROM audit_log WHERE tenant_id = 5000 ORDER BY id DESC LIMIT 101",
    "tenants page": "SELECT * FROM tenants WHERE slug > 't005000' ORDER BY slug LIMIT 101",
}


def _account(index: int, n: int, slug: str) -> dict[str, Any]:
    return {
        "name": f"acct-{n}",
        "provider": "smtp",
        "host": "127.0.0.1",
        "port": 587,
        "username": f"user{n}",
        "password": f"pw-{index}-{n}",
        "from_email": f"s{n}@{slug}.example",
    }


async def _create(client: httpx.AsyncClient, indexes: range, concurrency: int, say: Any) -> int:
    """Each of ``concurrency`` workers takes the next tenant: PUT it, then POST its three accounts."""
    pending = iter(indexes)
    created = 0
    start = time.perf_counter()

    async def worker() -> None:
        nonlocal created
        for index in pending:
            slug = f"t{index:06d}"
            response = await client.put(f"/v1/tenants/{slug}", json={"display_name": slug})
            assert response.status_code == 201, response.text
            for n in range(3):
                response = await client.post(f"/v1/tenants/{slug}/accounts?verify=false", json=_account(index, n, slug))
                assert response.status_code == 201, response.text
            created += 4
            if index and index % 1000 == 0:
                say(f"  {index} tenants, {created / (time.perf_counter() - start):.0f} creations/s")

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return created


async def _gets(client: httpx.AsyncClient, tenants: int, count: int) -> list[float]:
    latencies = []
    for _ in range(count):
        slug = f"t{random.randrange(tenants):06d}"
        path = random.choice([f"/v1/tenants/{slug}/accounts", f"/v1/tenants/{slug}/accounts/acct-1", f"/v1/tenants/{slug}"])
        began = time.perf_counter()
        response = await client.get(path)
        latencies.append(time.perf_counter() - began)
        assert response.status_code == 200, response.text
    return latencies


def run(tenants: int, concurrency: int = 8, say: Any = print) -> dict[str, Any]:
    """In-process ASGI (httpx, no sockets): the figures are the app and the database, fsync on."""
    with LocalPostgres(fast=False) as pg:
        engine = make_engine(pg.url(), pool_size=concurrency)
        migrate.upgrade(engine)
        verifier = Verifier(hosts=HostPolicy.from_lists(["127.0.0.1/32"], []), pm=get_plugin_manager())
        ctx = ControlContext(
            engine=engine,
            keyring=Keyring([MasterKey.from_bytes(random.randbytes(32))]),
            verifier=verifier,
            admin_tokens=[SecretStr(TOKEN)],
        )
        app = FastAPI()
        for router in routers():
            app.include_router(router)
        app.state.control = ctx

        async def drive() -> tuple[int, float, list[float]]:
            transport = httpx.ASGITransport(app=app)
            headers = {"Authorization": f"Bearer {TOKEN}"}
            async with httpx.AsyncClient(transport=transport, base_url="http://bench", headers=headers) as client:
                began = time.perf_counter()
                created = await _create(client, range(tenants), concurrency, say)
                elapsed = time.perf_counter() - began
                return created, elapsed, await _gets(client, tenants, 2000)

        created, elapsed, latencies = asyncio.run(drive())
        with engine.connect() as connection:
            connection.execute(text("ANALYZE"))
            size = connection.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
            plans = {
                label: " / ".join(line.strip() for line in connection.execute(text(f"EXPLAIN {sql}")).scalars())
                for label, sql in HOT_QUERIES.items()
            }
        engine.dispose()
    return {
        "tenants": tenants,
        "accounts": tenants * 3,
        "concurrency": concurrency,
        "creations": created,
        "seconds": round(elapsed, 1),
        "creations_per_second": round(created / elapsed, 1),
        "get_p50_ms": round(_percentile(latencies, 0.5) * 1000, 2),
        "get_p99_ms": round(_percentile(latencies, 0.99) * 1000, 2),
        "database_bytes": size,
        "database_mb": round(size / 1e6, 1),
        **{f"plan: {label}": plan for label, plan in plans.items()},
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ops/bench --control-plane")
    parser.add_argument("--control-plane", action="store_true")
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=8, help="tenants created at the same time")
    args = parser.parse_args(argv)
    result = run(args.tenants, args.concurrency)
    for key, value in result.items():
        print(f"{key}: {value}")
    return 0
