"""One structlog configuration: JSON lines in production, console output in a terminal.

Every process calls `configure_logging()` once. structlog's own lines and stdlib lines (Dramatiq,
uvicorn, aiosmtplib, plugins) go through the same processors and the same handler, so they share
one format, carry the bound context (`event_id`, `stage`, `account`, `attempt`) and pass the
secrets redactor, exception text included.

Knobs (environment):
- `MAILPIPE_LOG_LEVEL`   root level, default INFO.
- `MAILPIPE_LOG_FORMAT`  `json` or `console`; default console on a terminal, JSON otherwise.
- `MAILPIPE_LOG_JOURNEY` level of the per-message canonical lines (`stage_done`, logger
  `mailpipe.journey`): `info` (default), `debug`, or `off`. At 1,000 emails/s they are ~5,000
  lines/s; `off` (or `debug` under an INFO root) skips building them entirely.

`mailpipe serve` runs uvicorn with `log_config=None` after `configure_logging()`, so uvicorn's
loggers propagate here instead of installing their own handlers.

Worker processes log through `inherited_stderr()` when the worker command's stderr is a file: see
there why Dramatiq's relay through its parent process is bypassed then.
"""

from __future__ import annotations

import json as jsonlib
import logging
import os
import stat
import sys
from collections.abc import Iterable, MutableMapping
from datetime import UTC, datetime
from typing import Any, TextIO

import structlog
from structlog.typing import Processor

from pipeline.observe.redact import redact_event

JOURNEY_LOGGER = "mailpipe.journey"
# Loggers that install their own handlers; we make them propagate to ours instead.
ADOPTED_LOGGERS = ("dramatiq", "uvicorn", "uvicorn.error", "uvicorn.access", "aiosmtplib", "pika")
_JOURNEY_LEVELS = {"info": logging.INFO, "debug": logging.DEBUG, "off": logging.CRITICAL + 1}


def _wants_json(json: bool | None, stream: TextIO | AppendingFile) -> bool:
    if json is not None:
        return json
    chosen = os.environ.get("MAILPIPE_LOG_FORMAT", "").lower()
    if chosen in ("json", "console"):
        return chosen == "json"
    return not stream.isatty()


def journey_level() -> int:
    name = os.environ.get("MAILPIPE_LOG_JOURNEY", "info").lower()
    return _JOURNEY_LEVELS.get(name, logging.INFO)


def configure_logging(level: str | None = None, json: bool | None = None, stream: TextIO | AppendingFile | None = None) -> None:
    level = (level or os.environ.get("MAILPIPE_LOG_LEVEL", "INFO")).upper()
    stream = stream or sys.stderr
    as_json = _wants_json(json, stream)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, *shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,  # exception → text, so the redactor sees it
            redact_event,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    global _json_handler
    _json_handler = handler if as_json else None
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ADOPTED_LOGGERS:
        adopted = logging.getLogger(name)
        adopted.handlers[:] = []
        adopted.propagate = True
    logging.getLogger(JOURNEY_LOGGER).setLevel(journey_level())


_json_handler: logging.StreamHandler[Any] | None = None


class AppendingFile:
    """A text stream over a file descriptor with one `write()` system call per write: a line (or a
    batch of lines) lands whole or not at all, never interleaved with another process's writes
    to the same file, and is in the file (the page cache) as soon as `write` returns."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def write(self, text: str) -> int:
        data = memoryview(text.encode("utf-8", errors="replace"))
        while data:
            data = data[os.write(self._fd, data) :]
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._fd


def inherited_stderr() -> AppendingFile | None:
    """The process's own stderr (fd 2) when it is a regular file and `sys.stderr` has been pointed
    elsewhere; None otherwise.

    Dramatiq points a worker process's `sys.stderr` at a pipe to its parent, which copies what
    arrives to the command's stderr. Lines still in that pipe when the command is SIGKILLed
    (OOM killer, `kill -9`, a crashed host's watchdog) are lost, although the worker wrote them
    before it acknowledged the batch they describe. When that stderr is a regular file, every
    process can append to it directly: writes to one file are atomic with respect to each other,
    so lines stay whole. A pipe or a socket (a container runtime, journald) does not promise that
    beyond 4 KiB, so there the relay stays."""
    try:
        if sys.stderr is not None and sys.stderr.fileno() == 2:
            return None
    except (AttributeError, OSError, ValueError):
        pass  # Dramatiq's pipe wrapper has a descriptor of its own; some replacements have none
    try:
        mode = os.fstat(2).st_mode
    except OSError:
        return None
    if not stat.S_ISREG(mode):
        return None
    return AppendingFile(2)


def write_journey_lines(lines: Iterable[MutableMapping[str, Any]]) -> bool:
    """Write a batch's canonical lines straight to the JSON handler, as one write.

    The per-email lines are the bulk of all logging (five per email); sent one by one through
    structlog and the stdlib handler they cost ~70 µs each, a tenth of the worker CPU. This path
    makes the same JSON objects (bound context, level, logger, timestamp, the redactor) for a
    fraction of that. It returns False — and the caller logs the normal way — unless the JSON
    handler set up by `configure_logging` is still the only handler the journey lines reach.
    """
    handler = _json_handler
    root = logging.getLogger()
    journey = logging.getLogger(JOURNEY_LOGGER)
    if handler is None or root.handlers != [handler] or journey.handlers or not journey.propagate:
        return False
    context = structlog.contextvars.get_contextvars()
    stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    rendered = []
    for fields in lines:
        event_dict: MutableMapping[str, Any] = {
            **context,
            **fields,
            "level": "info",
            "logger": JOURNEY_LOGGER,
            "timestamp": stamp,
        }
        rendered.append(jsonlib.dumps(redact_event(None, "info", event_dict), default=repr))
    if rendered:
        handler.acquire()
        try:
            handler.stream.write("\n".join(rendered) + "\n")
            handler.flush()
        finally:
            handler.release()
    return True
