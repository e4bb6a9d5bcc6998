"""`mailpipe inbox ...`: watch the reply and bounce mailboxes over IMAP."""

from __future__ import annotations

import signal
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
    once: Annotated[bool, typer.Option("--once", help="one pass over every configured mailbox, then exit")] = False,
    mailbox: Annotated[list[str] | None, typer.Option("--mailbox", "-m", help="only this mailbox")] = None,
    lease_seconds: Annotated[
        float, typer.Option("--lease-seconds", min=1.0, help="how soon another watcher takes over a mailbox of one that died")
    ] = 15.0,
    interval: Annotated[
        float, typer.Option("--interval", min=0.1, help="seconds between checks of the registry and lease renewals")
    ] = 2.0,
) -> None:
    """Watch every mailbox (IDLE, else polling) and record what arrives on its events.

    The mailboxes are the TOML's (`imap` on an account, `[inbox]`) and, with a database, every
    tenant's account with reply tracking and an IMAP mailbox, picked up and dropped as they change.
    Each mailbox is watched by one `inbox watch` across all hosts (a lease in Redis).
    """
    from pipeline.context import build_context
    from pipeline.errors import MailpipeError
    from pipeline.inbox.poller import mailboxes_of, watch_once
    from pipeline.inbox.supervisor import Supervisor, reply_mailboxes

    loaded = load_or_exit(config)
    configure_logging()
    if once:
        if not mailboxes_of(loaded, mailbox):
            err.print("[red]error[/red] no such mailbox configured: set `imap = {...}` on an account or an [inbox] table")
            raise typer.Exit(2)
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
    if interval * 2 >= lease_seconds:
        err.print("[red]error[/red] --lease-seconds must be more than twice --interval")
        raise typer.Exit(2)
    ctx = build_context(loaded)
    registry = reply_mailboxes(ctx)
    if registry is None and not mailboxes_of(loaded, mailbox):
        err.print("[red]error[/red] no such mailbox configured: set `imap = {...}` on an account or an [inbox] table")
        raise typer.Exit(2)
    supervisor = Supervisor(ctx, registry=registry, only=mailbox, lease_seconds=lease_seconds, interval=interval)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: supervisor.stop.set())
    source = "the configuration and the registry" if registry is not None else "the configuration"
    err.print(f"watching the mailboxes of {source} as {supervisor.owner}; Ctrl-C to stop")
    supervisor.run()
