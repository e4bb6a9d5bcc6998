"""`/metrics` for `mailpipe worker --metrics-port`: one exporter per worker command.

Design. `mailpipe worker` (before it execs Dramatiq) points `PROMETHEUS_MULTIPROC_DIR` at a
directory of its own — `$TMPDIR/mailpipe-metrics-<uid>-<port>`, or the one already set — and
wipes the `*.db` files in it. Every Dramatiq worker process inherits the variable, so
prometheus-client writes its instruments to per-pid files there. Dramatiq's master forks one
more process for us (`--fork-function pipeline.observe.server:serve`, the same hook Dramatiq's
own Prometheus middleware uses); it sums the files (`MultiProcessCollector`), adds the Redis
state (`StateCollector`) and serves HTTP. It starts after the workers booted and stops with
them. Before each scrape it marks processes that are gone as dead, so a killed worker's
in-progress count does not linger.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

FORK_FUNCTION = "pipeline.observe.server:serve"
PORT_ENV = "MAILPIPE_METRICS_PORT"
HOST_ENV = "MAILPIPE_METRICS_HOST"
DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
_LIVE_FILE = re.compile(r"^gauge_live\w+_(\d+)\.db$")


def prepare_worker_metrics(env: dict[str, str], port: int, host: str = "0.0.0.0") -> list[str]:
    """Set the environment for the worker processes and return the Dramatiq arguments to add."""
    directory = Path(env.get(DIR_ENV) or Path(tempfile.gettempdir()) / f"mailpipe-metrics-{os.getuid()}-{port}")
    directory.mkdir(parents=True, exist_ok=True)
    wipe(directory)
    env[DIR_ENV] = str(directory)
    env[PORT_ENV] = str(port)
    env[HOST_ENV] = host
    return ["--fork-function", FORK_FUNCTION]


def wipe(directory: Path) -> None:
    """Remove last run's metric files (only ours: `*.db`), so counters start from zero."""
    for path in directory.glob("*.db"):
        path.unlink(missing_ok=True)


def reap_dead_processes(directory: str) -> None:
    """Drop live-gauge files of processes that no longer exist (killed workers)."""
    from prometheus_client import multiprocess

    for name in os.listdir(directory):
        match = _LIVE_FILE.match(name)
        if match and not _alive(int(match.group(1))):
            multiprocess.mark_process_dead(int(match.group(1)), directory)  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def make_app(render: Any, directory: str | None) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        from prometheus_client import CONTENT_TYPE_LATEST

        path = environ.get("PATH_INFO", "/")
        if path == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok\n"]
        if path not in ("/metrics", "/"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        if directory:
            reap_dead_processes(directory)
        body = render()
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST), ("Content-Length", str(len(body)))])
        return [body]

    return app


def serve() -> int:
    """The Dramatiq fork function: serve until Dramatiq's master stops us."""
    import structlog

    from pipeline.config import load_config
    from pipeline.observe.exposition import render_metrics
    from pipeline.observe.logs import configure_logging

    configure_logging()
    config = load_config()
    port = int(os.environ.get(PORT_ENV, "9464"))
    host = os.environ.get(HOST_ENV, "0.0.0.0")
    directory = os.environ.get(DIR_ENV)
    app = make_app(lambda: render_metrics(config), directory)
    server = make_server(host, port, app, server_class=_Server, handler_class=_QuietHandler)
    structlog.get_logger("mailpipe.metrics").info("metrics_serving", host=host, port=port, multiprocess_dir=directory)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0
