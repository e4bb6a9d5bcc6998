"""``/healthz`` (Redis reachable, workers heard from recently) and the ``/metrics`` ASGI app."""

from __future__ import annotations

import time
from typing import Any

import redis
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from pipeline.http.schemas import Health
from pipeline.http.state import ServeState

router = APIRouter(tags=["operations"])


def workers_alive(state: ServeState) -> int | None:
    """Dramatiq's Redis broker keeps a heartbeat per worker in ``{namespace}:__heartbeats__`` (ms)."""
    broker = state.config.broker
    if broker.kind != "redis":
        return None
    client = state.client if broker.url == state.config.redis_url else redis.Redis.from_url(broker.url, socket_timeout=2)
    since = time.time() * 1000 - broker.heartbeat_timeout_ms
    return int(client.zcount(f"{broker.namespace}:__heartbeats__", since, "+inf"))


def check(state: ServeState) -> Health:
    try:
        state.client.ping()
        workers = workers_alive(state)
    except redis.RedisError:
        return Health(ok=False, redis=False, workers=None)
    return Health(ok=workers is None or workers > 0, redis=True, workers=workers)


@router.get(
    "/healthz",
    summary="Redis reachable and workers seen recently",
    response_model=Health,
    responses={503: {"model": Health, "description": "Redis unreachable or no live worker"}},
)
async def healthz(request: Request) -> JSONResponse:
    health = await run_in_threadpool(check, request.app.state.serve)
    return JSONResponse(health.model_dump(), status_code=200 if health.ok else 503, headers={"Cache-Control": "no-store"})


def metrics_app(state: ServeState) -> Any:
    """``pipeline.observe.metrics``' exporter: instruments (summed over processes when
    ``PROMETHEUS_MULTIPROC_DIR`` is set) and the Redis state collector."""
    from pipeline.observe.exposition import metrics_asgi_app

    return metrics_asgi_app(state.config)
