"""One structlog setup: JSON lines, stdlib logs through the same processors, secrets redacted."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog

from pipeline.models import LeadEvent
from pipeline.observe import journey, redact
from pipeline.observe.logs import ADOPTED_LOGGERS, JOURNEY_LOGGER, AppendingFile, configure_logging
from pipeline.secrets import SecretRef

SECRET = "s3cr3t-Pa55-word-42"


@pytest.fixture
def log_output(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], list[dict[str, object]]]]:
    """Configure logging as a worker does, into a buffer; restore the test process's logging after."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, structlog.get_config())
    saved_adopted = {name: (logging.getLogger(name).handlers[:], logging.getLogger(name).propagate) for name in ADOPTED_LOGGERS}
    saved_journey = logging.getLogger(JOURNEY_LOGGER).level
    buffer = io.StringIO()
    monkeypatch.delenv("MAILPIPE_LOG_JOURNEY", raising=False)
    configure_logging(level="INFO", json=True, stream=buffer)

    def lines() -> list[dict[str, object]]:
        return [json.loads(line) for line in buffer.getvalue().splitlines()]

    yield lines
    root.handlers[:], _, config = saved
    root.setLevel(saved[1])
    structlog.configure(**config)
    for name, (handlers, propagate) in saved_adopted.items():
        logging.getLogger(name).handlers[:] = handlers
        logging.getLogger(name).propagate = propagate
    logging.getLogger(JOURNEY_LOGGER).setLevel(saved_journey)
    redact.forget_all()


def test_a_resolved_secret_is_redacted_from_messages_fields_and_its_base64_form(
    log_output: Callable[[], list[dict[str, object]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MP_TEST_SECRET", SECRET)
    assert SecretRef("env:MP_TEST_SECRET").resolve().get_secret_value() == SECRET
    encoded = base64.b64encode(SECRET.encode()).decode()
    structlog.get_logger("t").info(f"connecting with {SECRET}", reply=f"334 {encoded}", nested={"list": [f"x{SECRET}y"]})
    [line] = log_output()
    text = json.dumps(line)
    assert SECRET not in text and encoded not in text
    assert line["event"] == "connecting with [redacted]"
    assert line["nested"] == {"list": ["x[redacted]y"]}


def test_secret_named_fields_lose_their_value_whatever_it_is(log_output: Callable[[], list[dict[str, object]]]) -> None:
    structlog.get_logger("t").info("login", password="hunter2hunter2", api_key="abc", smtp_token=123, username="bob")
    [line] = log_output()
    assert line["password"] == line["api_key"] == line["smtp_token"] == "[redacted]"
    assert line["username"] == "bob"


def test_credential_shapes_are_redacted_even_when_never_seen_before(log_output: Callable[[], list[dict[str, object]]]) -> None:
    log = structlog.get_logger("t")
    log.info("sent AUTH PLAIN AGFscGhhAGFscGhhLXNlY3JldA==")
    log.info("header Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig")
    log.info("broker redis://:redispass@127.0.0.1:6379/0 down")
    log.info("config password=topsecret; api_key: SG.abcdefghijklmnopqrstuv.ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq")
    events = [str(line["event"]) for line in log_output()]
    assert events[0] == "sent AUTH PLAIN [redacted]"
    assert events[1] == "header Authorization: Bearer [redacted]"
    assert events[2] == "broker redis://:[redacted]@127.0.0.1:6379/0 down"
    assert "topsecret" not in events[3] and "SG.abc" not in events[3]


def test_exception_text_from_structlog_and_from_stdlib_loggers_is_redacted(
    log_output: Callable[[], list[dict[str, object]]],
) -> None:
    redact.remember(SECRET)
    try:
        raise RuntimeError(f"login alpha:{SECRET} refused")
    except RuntimeError:
        structlog.get_logger("t").exception("send_failed")
        logging.getLogger("dramatiq.worker.WorkerThread").error("Failed to process message %s", "m1", exc_info=True)
    first, second = log_output()
    assert "RuntimeError: login alpha:[redacted] refused" in str(first["exception"])
    assert second["logger"] == "dramatiq.worker.WorkerThread" and second["level"] == "error"
    assert second["event"] == "Failed to process message m1"
    assert "RuntimeError: login alpha:[redacted] refused" in str(second["exception"])
    assert SECRET not in json.dumps([first, second])


def test_stdlib_lines_carry_the_bound_context_and_long_values_are_bounded(
    log_output: Callable[[], list[dict[str, object]]],
) -> None:
    with structlog.contextvars.bound_contextvars(event_id="e-1", stage="send", account="alpha", attempt=2):
        logging.getLogger("aiosmtplib").warning("slow server")
        structlog.get_logger("t").info("payload", body="x" * 50_000)
    first, second = log_output()
    assert {k: first[k] for k in ("event_id", "stage", "account", "attempt")} == {
        "event_id": "e-1",
        "stage": "send",
        "account": "alpha",
        "attempt": 2,
    }
    assert len(str(second["body"])) < 4_100 and str(second["body"]).endswith("(+46000 chars)")


def test_console_format_is_chosen_for_a_terminal_and_json_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.observe.logs import _wants_json

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("MAILPIPE_LOG_FORMAT", raising=False)
    assert _wants_json(None, Terminal()) is False
    assert _wants_json(None, io.StringIO()) is True
    monkeypatch.setenv("MAILPIPE_LOG_FORMAT", "json")
    assert _wants_json(None, Terminal()) is True


def event(i: int) -> str:
    return LeadEvent(event_id=f"j-{i}", to=f"a{i}@x.example", template="hello").to_json()


def test_a_stage_batch_gives_one_canonical_line_per_email_with_its_noted_outcome(
    log_output: Callable[[], list[dict[str, object]]],
) -> None:
    with journey.observe("render", 2, LeadEvent.model_validate_json) as run:
        run.decode(event(1))
        run.decode(event(2))
        journey.note("j-2", "rejected", reason="missing_variable")
    lines = [line for line in log_output() if line["event"] == "stage_done"]
    assert [(line["event_id"], line["stage"], line["outcome"]) for line in lines] == [
        ("j-1", "render", "done"),
        ("j-2", "render", "rejected"),
    ]
    assert lines[1]["reason"] == "missing_variable" and lines[0]["batch"] == 2
    assert all(isinstance(line["duration_ms"], float) for line in lines)


def test_turning_the_journey_off_builds_no_canonical_line(
    log_output: Callable[[], list[dict[str, object]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILPIPE_LOG_JOURNEY", "off")
    configure_logging(level="INFO", json=True, stream=logging.getLogger().handlers[0].stream)  # type: ignore[attr-defined]
    with journey.observe("render", 1, LeadEvent.model_validate_json) as run:
        run.decode(event(1))
        structlog.get_logger("t").info("other_line")
    assert run.items == [] and not run.journey
    assert [line["event"] for line in log_output()] == ["other_line"]


def test_item_context_bound_by_a_stage_does_not_leak_past_its_batch(log_output: Callable[[], list[dict[str, object]]]) -> None:
    with journey.observe("classify", 1, LeadEvent.model_validate_json):
        structlog.contextvars.bind_contextvars(event_id="leaky", account="alpha", attempt=1)
    structlog.get_logger("t").info("after")
    assert "event_id" not in log_output()[-1] and "stage" not in log_output()[-1]


WHERE_LINES_GO = """
import sys
from pipeline.observe.logs import inherited_stderr
sys.stderr = open(sys.argv[1], "w")  # as Dramatiq points a worker's stderr at its relay pipe
stream = inherited_stderr()
print(type(stream).__name__ if stream is not None else "relay")
if stream is not None:
    stream.write(sys.argv[2] + "\\n")
"""


@pytest.mark.parametrize("stderr_kind", ["file", "pipe"])
def test_a_worker_appends_to_its_commands_stderr_only_when_that_is_a_file(stderr_kind: str, tmp_path: Path) -> None:
    """A pipe keeps Dramatiq's relay: writes to a pipe over 4 KiB may interleave between processes."""
    log = tmp_path / "stderr.log"
    with open(log, "ab") as target:
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", WHERE_LINES_GO, str(tmp_path / f"relay-{n}"), f"line from writer {n}"],
                stdout=subprocess.PIPE,
                stderr=target if stderr_kind == "file" else subprocess.PIPE,
            )
            for n in range(2)
        ]
        outputs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    chosen = {out.decode().strip() for out, _ in outputs}
    if stderr_kind == "pipe":
        assert chosen == {"relay"}
        assert log.read_text() == ""
    else:
        assert chosen == {"AppendingFile"}
        assert sorted(log.read_text().splitlines()) == ["line from writer 0", "line from writer 1"]


def test_a_batch_of_lines_goes_to_the_file_in_one_system_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """One write() per batch is what keeps a batch whole beside other processes' writes to the same file."""
    calls: list[bytes] = []

    def write(fd: int, data: memoryview) -> int:
        calls.append(bytes(data))
        return len(data)

    monkeypatch.setattr(os, "write", write)
    batch = "".join(f'{{"n": {n}, "pad": "{"x" * 300}"}}\n' for n in range(100))
    assert AppendingFile(2).write(batch) == len(batch)
    assert calls == [batch.encode()]
