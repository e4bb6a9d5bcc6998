"""A thread that LISTENs for registry changes on PostgreSQL and invalidates the cache at once."""

from __future__ import annotations

import threading

import psycopg
import structlog

from pipeline.registry.cache import CHANNEL, Registry

log = structlog.get_logger("mailpipe.registry")


class ChangeListener:
    def __init__(self, registry: Registry, url: str) -> None:
        self.registry = registry
        self.url = url.replace("postgresql+psycopg://", "postgresql://")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mailpipe-registry-listener", daemon=True)

    def start(self) -> ChangeListener:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.registry.checked_in_background = False
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    # Anything missed while we were not listening is caught by the version check.
                    self.registry.check_versions()
                    self.registry.checked_in_background = True
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=0.5):
                            self.registry.invalidate(note.payload)
                        self.registry.maybe_recheck()
            except Exception as exc:
                self.registry.checked_in_background = False  # until we listen again, lookups check themselves
                log.warning("registry_listener_reconnecting", error=type(exc).__name__)
                self._stop.wait(1.0)
