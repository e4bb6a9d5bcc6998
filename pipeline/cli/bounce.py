"""`mailpipe bounce ...`: classify bounce mails from files or stdin."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from pipeline.bounces import BounceReport, parse_bounce, to_json_dict

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Parse and classify bounce mails.")


@app.callback()
def bounce() -> None:
    """Parse and classify bounce mails."""


def _read(file: str) -> bytes:
    if file == "-":
        return sys.stdin.buffer.read()
    return Path(file).read_bytes()


@app.command()
def classify(
    file: str = typer.Argument(..., help="Mail file (.eml), or - for standard input."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (the stable contract)."),
) -> None:
    """Classify one mail: bounce (hard/soft, reason, status per recipient) or not."""
    try:
        raw = _read(file)
    except OSError as exc:
        typer.echo(f"error: cannot read {file}: {exc.strerror or exc}", err=True)
        raise typer.Exit(2) from None
    report = parse_bounce(raw)
    if report.internal_error:
        typer.echo("warning: the bounce parser failed on this mail (internal error, see the log)", err=True)
    if as_json:
        typer.echo(json.dumps(to_json_dict(report), ensure_ascii=False))
        return
    _summary(report, Console())


def _summary(report: BounceReport, console: Console) -> None:
    if not report.is_bounce:
        console.print(f"[bold]not a bounce[/bold] ({report.category}, reason {report.reason})")
    else:
        colour = "red" if report.kind == "hard" else "yellow"
        console.print(
            f"[bold {colour}]{report.kind} bounce[/bold {colour}] reason [bold]{report.reason}[/bold]"
            f" status {report.status or '-'} ({report.family or 'generic'})"
        )
    if report.recipients:
        table = Table("recipient", "kind", "reason", "status", "reply")
        for r in report.recipients:
            table.add_row(r.address, str(r.kind), r.reason, r.status or "-", (r.smtp_reply or "")[:80])
        console.print(table)
    if report.original_message_id:
        console.print(f"original message: {report.original_message_id}")
