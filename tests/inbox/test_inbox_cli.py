"""`mailpipe inbox watch --once` against the Dovecot mailbox."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from inbox_mails import reply, unrelated
from typer.testing import CliRunner

from pipeline.cli.inbox import app
from pipeline.config import load_config
from pipeline.context import build_context
from pipeline.inbox.index import MessageIndex
from pipeline.models import LeadEvent
from pipeline.smtp.mime import message_id_for
from pipeline.state.status import Transition


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """The command configures logging onto the runner's stderr, which closes when it returns."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


def test_watch_once_reads_the_mailbox_and_prints_what_it_found(dovecot, imap_config) -> None:
    path = imap_config()
    ctx = build_context(load_config(path))
    ctx.status.accept([LeadEvent(event_id="ev-1", to="lead@customer.example", subject="Hi", text="Hello")])
    ctx.status.record([Transition("default", "ev-1", "sent")])
    message_id = message_id_for("default", "ev-1", ctx.config.message_id_domain())
    MessageIndex(ctx.redis).remember([("default", message_id, "ev-1")])
    dovecot.append(reply(message_id))
    dovecot.append(unrelated())

    result = CliRunner().invoke(app, ["watch", "--once", "--config", str(path)])

    assert result.exit_code == 0, result.output
    assert "account:alpha" in result.output and "ignored=1, reply=1" in result.output
    assert ctx.status.get("default", "ev-1").state == "replied"  # type: ignore[union-attr]


def test_watch_refuses_a_config_without_mailboxes(write_config) -> None:
    result = CliRunner().invoke(app, ["watch", "--once", "--config", str(write_config())])

    assert result.exit_code == 2
    assert "no such mailbox configured" in result.output


def test_watch_refuses_an_unknown_mailbox_name(dovecot, imap_config) -> None:
    result = CliRunner().invoke(app, ["watch", "--once", "--config", str(imap_config()), "--mailbox", "nope"])

    assert result.exit_code == 2
