"""Core commands: worker, submit, log, config check, demo."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipeline.cli.config_apply import config_apply
from pipeline.cli.config_option import ConfigOption as ConfigOption  # re-exported for the command modules
from pipeline.cli.config_option import load_or_exit as load_or_exit
from pipeline.cli.output import ScriptFriendlyConsole, print_json
from pipeline.config import CONFIG_ENV
from pipeline.errors import ConfigError, MailpipeError
from pipeline.models import STAGES
from pipeline.runtime.processes import INSTALLED_ROOT, python_command

console = ScriptFriendlyConsole()
err = Console(stderr=True)


def config_check(file: Annotated[Path | None, typer.Argument(help="config file")] = None) -> None:
    """Validate a config file; report every problem with its file and line."""
    config = load_or_exit(file)
    from pipeline.context import build_context

    try:
        resolved = build_context(config).resolved
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(f"[red]error[/red] {problem}", highlight=False)
        raise typer.Exit(2) from None
    default = config.default.account if config.default is not None else "(none: accounts from the database)"
    console.print(f"[green]ok[/green] {len(resolved)} accounts, {len(config.routes)} routes, default {default}")


def worker(
    config: ConfigOption = None,
    processes: Annotated[int, typer.Option("--processes", "-p")] = 2,
    threads: Annotated[
        int,
        typer.Option(
            "--threads",
            "-t",
            help="per process; a send batch holds one while its SMTP sessions run: "
            "raise it for slow providers (4 was fastest against a local server, see docs/performance.md)",
        ),
    ] = 4,
    queues: Annotated[str, typer.Option("--queues", "-Q", help="comma list of stages, default all")] = "",
    metrics_port: Annotated[
        int, typer.Option("--metrics-port", envvar="MAILPIPE_METRICS_PORT", help="serve /metrics on this port (0: off)")
    ] = 0,
) -> None:
    """Run Dramatiq worker processes for the pipeline stages."""
    from pipeline.cli.database import require_schema_or_exit

    loaded = load_or_exit(config)
    require_schema_or_exit(loaded)
    env = dict(os.environ)
    if config:
        env[CONFIG_ENV] = str(config.resolve())
    env.setdefault("dramatiq_queue_prefetch", str(loaded.broker.prefetch))
    env.setdefault("dramatiq_delay_queue_prefetch", str(loaded.broker.prefetch))
    # Idle consumers poll up to this many ms; delayed sends are released on a poll, so the default
    # 1000 ms lets rate-limited mail drift late and bunch. 100 ms keeps slots within ~0.1 s.
    env.setdefault("dramatiq_worker_timeout", "100")
    # Safe-path mode, and Dramatiq's import path set to where pipeline is installed instead of its
    # default "." (the working directory), so a plugins/ or pipeline/ folder there cannot shadow ours.
    args = [*python_command(env), "-m", "dramatiq", "pipeline.runtime.worker", "-p", str(processes), "-t", str(threads)]
    args += ["--path", str(INSTALLED_ROOT)]
    if metrics_port:
        from pipeline.observe.server import prepare_worker_metrics

        args += prepare_worker_metrics(env, metrics_port)  # multiprocess dir wiped, exporter forked by Dramatiq
    stages = [q.strip() for q in queues.split(",") if q.strip()] or list(STAGES)
    unknown = [q for q in stages if q.removeprefix("mailpipe.") not in STAGES]
    if unknown:
        err.print(f"[red]error[/red] unknown queue(s): {', '.join(unknown)}; choose from {', '.join(STAGES)}")
        raise typer.Exit(2)
    args += ["-Q", *("mailpipe." + q.removeprefix("mailpipe.") for q in stages)]
    os.execve(sys.executable, args, env)


def submit(
    file: Annotated[str, typer.Argument(help="JSONL file of lead events, or - for stdin")],
    config: ConfigOption = None,
) -> None:
    """Submit lead events; invalid lines are reported and kept, valid lines still go through."""
    from pipeline.submit import Submitter, read_jsonl

    loaded = load_or_exit(config)
    stream = sys.stdin if file == "-" else open(file, encoding="utf-8")  # noqa: SIM115
    total = None if file == "-" else sum(1 for line in open(file, encoding="utf-8") if line.strip())  # noqa: SIM115
    submitter = Submitter(loaded)
    accepted = duplicates = 0
    errors: list[str] = []
    with (
        stream,
        Progress(
            TextColumn("submitting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err, transient=False
        ) as progress,
    ):
        task = progress.add_task("submit", total=total)
        chunk: list[str] = []
        line_numbers: list[int] = []
        for number, line in enumerate(read_jsonl(stream), start=1):
            chunk.append(line)
            line_numbers.append(number)
            if len(chunk) >= 1000:
                a, d, e = _submit_chunk(submitter, chunk, line_numbers)
                accepted, duplicates, errors = accepted + a, duplicates + d, errors + e
                progress.advance(task, len(chunk))
                chunk, line_numbers = [], []
        if chunk:
            a, d, e = _submit_chunk(submitter, chunk, line_numbers)
            accepted, duplicates, errors = accepted + a, duplicates + d, errors + e
            progress.advance(task, len(chunk))
    for message in errors:
        err.print(f"[red]refused[/red] {message}", highlight=False)
    console.print(f"accepted {accepted}, duplicates {duplicates}, refused {len(errors)}")
    if errors:
        raise typer.Exit(1)


def _submit_chunk(submitter, chunk: list[str], line_numbers: list[int]) -> tuple[int, int, list[str]]:  # type: ignore[no-untyped-def]
    report = submitter.submit(chunk, source="cli")
    errors = [f"line {line_numbers[e.index]}: {'; '.join(e.errors)}" for e in report.errors]
    return len(report.accepted), len(report.duplicates), errors


def log(
    event_id: Annotated[str, typer.Argument()],
    tenant: Annotated[str, typer.Option("--tenant")] = "default",
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON (for scripts) instead of a table")] = False,
) -> None:
    """Show an event's status history."""
    import redis

    from pipeline.archive.stores import reader_for, retention_of
    from pipeline.state.status import StatusStore

    loaded = load_or_exit(config)
    # Redis first, then the delivery log (PostgreSQL) once the event has left the hot window
    store = StatusStore(redis.Redis.from_url(loaded.redis_url), retention=retention_of(loaded), cold=reader_for(loaded))
    status = store.get(tenant, event_id)
    if status is None:
        err.print(f"no event {event_id!r} in tenant {tenant!r}")
        raise typer.Exit(1)
    if as_json:
        print_json({"event_id": event_id, "state": status.state, "outcome": status.outcome, "history": status.history})
        return
    console.print(f"[bold]{event_id}[/bold]  state={status.state}  outcome={status.outcome or '-'}")
    table = Table("time", "state", "stage", "account", "attempt", "detail")
    for entry in status.history:
        when = datetime.fromtimestamp(entry.get("at", 0), UTC).strftime("%H:%M:%S.%f")[:-3]
        detail = entry.get("error") or " ".join(
            str(entry[k]) for k in ("code", "enhanced", "reply", "reason") if entry.get(k) not in (None, "")
        )
        table.add_row(
            when, entry.get("state", ""), entry.get("stage", ""), entry.get("account", ""), str(entry.get("attempt", "")), detail
        )
    console.print(table)


def demo(
    out: Annotated[Path, typer.Option(help="where the demo keeps its maildir and files")] = Path("demo-out"),
    events: Annotated[int, typer.Option(help="how many lead events to submit")] = 60,
) -> None:
    """Run the whole pipeline on an embedded default: private Redis, local SMTP, workers, sample leads."""
    from pipeline.demo import run_demo

    try:
        code = run_demo(out.resolve(), events=events, console=console)
    except MailpipeError as exc:
        err.print(f"[red]demo failed[/red] {exc}")
        raise typer.Exit(1) from None
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command()(worker)
    app.command()(submit)
    app.command()(log)
    app.command()(demo)
    config_app = typer.Typer(help="Configuration.")
    config_app.command("check")(config_check)
    config_app.command("apply")(config_apply)
    app.add_typer(config_app, name="config")
