"""`mailpipe events list|export|retry`: the delivery log from the shell, through pipeline.control.events."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from pipeline.cli.config_option import ConfigOption, load_or_exit

app = typer.Typer(no_args_is_help=True, add_completion=False, help="The delivery log: query, export, retry what failed.")
console = Console()
err = Console(stderr=True)
Tenant = Annotated[str, typer.Option("--tenant", "-t")]
Campaign = Annotated[str | None, typer.Option()]
Since = Annotated[dt.datetime | None, typer.Option(help="created at or after (UTC)")]


def _engine(config: object) -> tuple[Any, Any]:
    from pipeline.db.engine import make_engine

    loaded = load_or_exit(config)  # type: ignore[arg-type]
    url = loaded.database.resolved_url()
    if url is None:
        err.print("[red]error[/red] the delivery log needs a database: set [database] url or MAILPIPE_DATABASE_URL")
        raise typer.Exit(2)
    return loaded, make_engine(url, statement_timeout_ms=3_600_000)


def _filters(**given: Any) -> Any:
    from pipeline.control.events import EventFilter

    def utc(value: dt.datetime | None) -> dt.datetime | None:
        return value.replace(tzinfo=dt.UTC) if value is not None and value.tzinfo is None else value

    given["since"], given["until"] = utc(given["since"]), utc(given["until"])
    return EventFilter(**given)


@app.command("list")
def list_events(
    tenant: Tenant = "default",
    campaign: Campaign = None,
    list_name: Annotated[str | None, typer.Option("--list")] = None,
    sender: Annotated[str | None, typer.Option()] = None,
    account: Annotated[str | None, typer.Option()] = None,
    outcome: Annotated[str | None, typer.Option()] = None,
    reason: Annotated[str | None, typer.Option()] = None,
    to: Annotated[str | None, typer.Option()] = None,
    since: Since = None,
    until: Annotated[dt.datetime | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    cursor: Annotated[str | None, typer.Option()] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    config: ConfigOption = None,
) -> None:
    """One page of events, oldest first; pass the printed cursor for the next page."""
    from pipeline.control import events

    _, engine = _engine(config)
    filters = _filters(
        campaign=campaign,
        list=list_name,
        sender=sender,
        account=account,
        outcome=outcome,
        reason=reason,
        to=to,
        since=since,
        until=until,
    )
    page = events.listing(engine, tenant, filters, limit=limit, cursor=cursor)
    if as_json:
        print(json.dumps({"events": page.events, "next_cursor": page.next_cursor}, default=str))
        return
    table = Table("created", "event_id", "recipient", "campaign", "account", "outcome", "reason")
    for e in page.events:
        table.add_row(
            f"{e['created_at']:%Y-%m-%d %H:%M:%S}",
            e["event_id"],
            e["recipient"] or "",
            e["campaign"] or "",
            e["account"] or "",
            e["outcome"] or e["state"],
            e["reason"] or "",
        )
    console.print(table)
    if page.next_cursor:
        console.print(f"next page: --cursor {page.next_cursor}")


@app.command("export")
def export_events(
    out: Annotated[Path, typer.Option("--out", "-o", help="CSV file to write ('-' for stdout)")],
    tenant: Tenant = "default",
    campaign: Campaign = None,
    list_name: Annotated[str | None, typer.Option("--list")] = None,
    sender: Annotated[str | None, typer.Option()] = None,
    account: Annotated[str | None, typer.Option()] = None,
    outcome: Annotated[str | None, typer.Option()] = None,
    reason: Annotated[str | None, typer.Option()] = None,
    to: Annotated[str | None, typer.Option()] = None,
    since: Since = None,
    until: Annotated[dt.datetime | None, typer.Option()] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON summary when done")] = False,
    config: ConfigOption = None,
) -> None:
    """The filtered delivery log as CSV, streamed (constant memory), with a progress bar."""
    from pipeline.control import events

    _, engine = _engine(config)
    filters = _filters(
        campaign=campaign,
        list=list_name,
        sender=sender,
        account=account,
        outcome=outcome,
        reason=reason,
        to=to,
        since=since,
        until=until,
    )
    rows = 0
    sink = sys.stdout.buffer if str(out) == "-" else out.open("wb")
    try:
        with Progress(console=err, transient=True, disable=str(out) == "-" or as_json) as progress:
            task = progress.add_task("exporting", total=None)
            for chunk in events.export_csv(engine, tenant, filters):
                sink.write(chunk)
                lines = chunk.count(b"\n")
                rows += lines
                progress.advance(task, lines)
    finally:
        if sink is not sys.stdout.buffer:
            sink.close()
    rows = max(rows - 1, 0)  # the header
    if as_json:
        print(json.dumps({"rows": rows, "out": str(out)}))
    elif str(out) != "-":
        err.print(f"exported {rows} rows to {out}")


@app.command("retry")
def retry_events(
    tenant: Tenant = "default",
    campaign: Campaign = None,
    list_name: Annotated[str | None, typer.Option("--list")] = None,
    sender: Annotated[str | None, typer.Option()] = None,
    account: Annotated[str | None, typer.Option()] = None,
    outcome: Annotated[str | None, typer.Option(help="failed (default), bounced or rejected")] = None,
    reason: Annotated[str | None, typer.Option()] = None,
    to: Annotated[str | None, typer.Option()] = None,
    since: Since = None,
    until: Annotated[dt.datetime | None, typer.Option()] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print what would be resubmitted")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    config: ConfigOption = None,
) -> None:
    """Resubmit only what failed, as new events linked by retry_of; suppressed and hard-bounced recipients skipped."""
    from pipeline.control import events
    from pipeline.submit import Submitter

    loaded, engine = _engine(config)
    filters = _filters(
        campaign=campaign,
        list=list_name,
        sender=sender,
        account=account,
        outcome=outcome,
        reason=reason,
        to=to,
        since=since,
        until=until,
    )
    plan = events.plan_retry(engine, tenant, filters)
    summary: dict[str, Any] = {
        "would_resubmit" if dry_run else "resubmitted": len(plan.resubmit),
        "skipped_suppressed": plan.skipped_suppressed,
        "skipped_already_retried": plan.skipped_already_retried,
        "skipped_no_event": plan.skipped_no_event,
    }
    if dry_run:
        summary["events"] = [
            {"event_id": e["event_id"], "retry_of": e["metadata"]["retry_of"], "to": e.get("to")} for e in plan.resubmit
        ]
    elif plan.resubmit:
        report = Submitter(loaded).submit(plan.resubmit, source="retry")
        summary.update(resubmitted=len(report.accepted), duplicates=len(report.duplicates), refused=len(report.errors))
    if as_json:
        print(json.dumps(summary))
    else:
        for key, value in summary.items():
            if key != "events":
                console.print(f"{key}: {value}")
        for e in summary.get("events", []):
            console.print(f"  {e['retry_of']} → {e['event_id']}  {e['to']}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="events")
