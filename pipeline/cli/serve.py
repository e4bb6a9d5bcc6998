"""`mailpipe serve`: the HTTP edge (ingest, webhooks, unsubscribe, clicks, health, metrics) on uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from pipeline.cli.core import ConfigOption, err, load_or_exit
from pipeline.config.serve import ServeConfig
from pipeline.errors import ConfigError

_DEFAULTS = ServeConfig()  # what an empty [serve] table means


def serve(
    config: ConfigOption = None,
    host: Annotated[
        str | None, typer.Option("--host", help=f"bind address (default: the config's \\[serve] host, else {_DEFAULTS.host})")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", help=f"port (default: the config's \\[serve] port, else {_DEFAULTS.port})")
    ] = None,
    access_log: Annotated[bool, typer.Option("--access-log", help="log every request line (URLs carry link tokens)")] = False,
) -> None:
    """Serve POST /v1/events, POST /webhooks/{provider}, /u/{token}, /c/{token}, /metrics and /healthz."""
    import uvicorn

    from pipeline.cli.database import require_schema_or_exit
    from pipeline.http.app import create_app
    from pipeline.observe.logs import configure_logging

    loaded = load_or_exit(config)
    configure_logging()
    require_schema_or_exit(loaded)
    try:
        app = create_app(loaded)
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(f"[red]error[/red] {problem}", highlight=False)
        raise typer.Exit(2) from None
    uvicorn.run(
        app,
        host=host or loaded.serve.host,
        port=port or loaded.serve.port,
        access_log=access_log,
        proxy_headers=True,
        server_header=False,
        log_level="info",
    )


def register(app: typer.Typer) -> None:
    app.command()(serve)
