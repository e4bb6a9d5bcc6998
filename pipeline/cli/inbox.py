"""`mailpipe inbox ...`: watch the reply and bounce mailboxes over IMAP."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from pipeline.cli.core import ConfigOption, load_or_exit
from pipeline.observe.logs import configure_logging

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Replies, auto-replies, bounces and complaints from IMAP.")
console = Console()
err = Console(stderr=True)


@app.callback()
def inbox() -> None:
    """Replies, auto-replies, bounces and complaints from IMAP mailboxes."""


@app.command()
def watch(
    config: ConfigOption = None,
    once: Annotated[bool, typer.Option("--once", help="one pass over every mailbox, then exit")] = False,
    mailbox: Annotated[list[str] | None, typer.Option("--mailbox", "-m", help="only this mailbox")] = None,
) -> None:
    """Watch every configured mailbox (IDLE, else polling) and record what arrives on its events."""
    from pipeline.errors import MailpipeError
    from pipeline.inbox.poller import mailboxes_of, start_watchers, watch_once

    loaded = load_or_exit(config)
    configure_logging()
    if not mailboxes_of(loaded, mailbox):
        err.print("[red]error[/red] no such mailbox configured: set `imap = {...}` on an account or an [inbox] table")
        raise typer.Exit(2)
    if once:
        try:
            results = watch_once(loaded, only=mailbox)
        except MailpipeError as exc:
            err.print(f"[red]error[/red] {exc}", highlight=False)
            raise typer.Exit(1) from None
        table = Table("mailbox", "read", "by kind", "errors")
        for name, stats in results.items():
            kinds = ", ".join(f"{k}={v}" for k, v in sorted(stats.counts.items())) or "-"
            table.add_row(name, str(sum(stats.counts.values())), kinds, str(stats.errors))
        console.print(table)
        return
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    threads = start_watchers(loaded, stop, only=mailbox)
    err.print(f"watching {len(threads)} mailbox(es); Ctrl-C to stop")
    while any(t.is_alive() for t in threads) and not stop.is_set():
        stop.wait(1.0)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
