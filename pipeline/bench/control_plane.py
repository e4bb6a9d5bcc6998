"""`ops/bench --control-plane [--tenants N]`: tenants x 3 accounts created through the API on a private PostgreSQL.

Reports creations per second, GET p99 and the database size. The API runs in-process (FastAPI's
test client: no sockets), so the figures are the app and the database, not the network.
"""

from __future__ import annotations

import argparse
import random
import time
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
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


def run(tenants: int, say: Any = print) -> dict[str, Any]:
    with LocalPostgres(fast=False) as pg:
        engine = make_engine(pg.url(), pool_size=4)
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
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with TestClient(app) as client:
            start = time.perf_counter()
            created = 0
            for index in range(tenants):
                slug = f"t{index:06d}"
                assert client.put(f"/v1/tenants/{slug}", json={"display_name": slug}, headers=headers).status_code == 201
                for n in range(3):
                    body = {
                        "name": f"acct-{n}",
                        "provider": "smtp",
                        "host": "127.0.0.1",
                        "port": 587,
                        "username": f"user{n}",
                        "password": f"pw-{index}-{n}",
                        "from_email": f"s{n}@{slug}.example",
                    }
                    response = client.post(f"/v1/tenants/{slug}/accounts?verify=false", json=body, headers=headers)
                    assert response.status_code == 201, response.text
                created += 4
                if index and index % 1000 == 0:
                    say(f"  {index} tenants, {created / (time.perf_counter() - start):.0f} creations/s")
            elapsed = time.perf_counter() - start
            latencies = []
            for _ in range(2000):
                slug = f"t{random.randrange(tenants):06d}"
                path = random.choice(
                    [f"/v1/tenants/{slug}/accounts", f"/v1/tenants/{slug}/accounts/acct-1", f"/v1/tenants/{slug}"]
                )
                began = time.perf_counter()
                assert client.get(path, headers=headers).status_code == 200
                latencies.append(time.perf_counter() - began)
        with engine.connect() as connection:
            size = connection.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
            plan = "\n".join(
                connection.execute(
                    text("EXPLAIN SELECT * FROM smtp_accounts WHERE tenant_id = 5000 AND name = 'acct-1'")
                ).scalars()
            )
        engine.dispose()
    return {
        "tenants": tenants,
        "accounts": tenants * 3,
        "creations": created,
        "seconds": round(elapsed, 1),
        "creations_per_second": round(created / elapsed, 1),
        "get_p50_ms": round(_percentile(latencies, 0.5) * 1000, 2),
        "get_p99_ms": round(_percentile(latencies, 0.99) * 1000, 2),
        "database_bytes": size,
        "database_mb": round(size / 1e6, 1),
        "account_lookup_plan": plan,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ops/bench --control-plane")
    parser.add_argument("--control-plane", action="store_true")
    parser.add_argument("--tenants", type=int, default=10_000)
    args = parser.parse_args(argv)
    result = run(args.tenants)
    for key, value in result.items():
        print(f"{key}: {value}")
    return 0
