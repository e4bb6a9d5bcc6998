"""The app factory: ``create_app(config)`` → one FastAPI app for every HTTP edge (docs/architecture.md: "Edges")."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pluggy
import redis
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from pipeline.config import Config
from pipeline.control.build import control_context
from pipeline.http import click, control, health, ingest, unsubscribe, webhooks
from pipeline.http.certificates import CertificateCache
from pipeline.http.state import ServeState
from pipeline.models import LeadEvent
from pipeline.plugin_host.manager import plugin_manager_for
from pipeline.submit import Submitter

TITLE = "mailpipe"
DESCRIPTION = (
    "Ingest lead events, receive provider delivery webhooks, one-click unsubscribe (RFC 8058), "
    "click and open tracking, health and metrics."
)


def create_app(
    config: Config,
    *,
    client: redis.Redis | None = None,
    pm: pluggy.PluginManager | None = None,
    certificates: Callable[[str], bytes] | None = None,
    clock: Callable[[], float] = time.time,
    submitter_factory: Callable[[], Submitter] | None = None,
    with_control: bool = True,
) -> FastAPI:
    """Build the app; raises ConfigError when a secret it needs cannot be resolved."""
    app = FastAPI(title=TITLE, version="1", description=DESCRIPTION, docs_url=None, redoc_url=None)
    app.state.serve = ServeState(
        config=config,
        client=client or redis.Redis.from_url(config.redis_url, health_check_interval=30, socket_keepalive=True),
        pm=pm or plugin_manager_for(config),
        clock=clock,
        certificates=certificates or CertificateCache(),
        submitter_factory=submitter_factory,
    )
    for module in (ingest, webhooks, unsubscribe, click, health):
        app.include_router(module.router)
    for router in control.routers():
        app.include_router(router)
    app.state.control = control_context(config, client=app.state.serve.client) if with_control else None
    app.mount("/metrics", health.metrics_app(app.state.serve))
    app.openapi = lambda: openapi_schema(app)  # type: ignore[method-assign]
    return app


def openapi_schema(app: FastAPI) -> dict[str, Any]:
    """The generated schema plus LeadEvent, which POST /v1/events validates per item itself."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        lead = LeadEvent.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
        schema.setdefault("components", {}).setdefault("schemas", {})["LeadEvent"] = lead
        app.openapi_schema = schema
    return app.openapi_schema
