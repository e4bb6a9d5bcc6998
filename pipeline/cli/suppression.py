"""`mailpipe suppression list|add|remove|import|export|rebuild`: a tenant's suppression lists."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from pipeline.cli.config_option import ConfigOption, load_or_exit

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Suppression lists (database) and their Redis index.")
console = Console()
err = Console(stderr=True)
Tenant = Annotated[str, typer.Option("--tenant", "-t")]
Scope = Annotated[str, typer.Option("--list", help="one list's name; tenant-wide when omitted")]


def _stores(config: object) -> tuple[Any, Any, Any]:
    import redis

    from pipeline.db.engine import make_engine
    from pipeline.state.suppression import SuppressionStore

    loaded = load_or_exit(config)  # type: ignore[arg-type]
    url = loaded.database.resolved_url()
    if url is None:
        err.print("[red]error[/red] suppression lists need a database: set [database] url or MAILPIPE_DATABASE_URL")
        raise typer.Exit(2)
    return loaded, make_engine(url, statement_timeout_ms=600_000), SuppressionStore(redis.Redis.from_url(loaded.redis_url))


def _tenant_id(engine: Any, slug: str) -> int | None:
    from sqlalchemy import text

    with engine.connect() as connection:
        found = connection.execute(text("SELECT id FROM tenants WHERE slug = :s"), {"s": slug}).scalar_one_or_none()
    return int(found) if found is not None else None


def _fail(exc: Exception) -> None:
    err.print(f"[red]error[/red] {getattr(exc, 'detail', exc)}")
    raise typer.Exit(1)


@app.command("list")
def list_suppressions(
    tenant: Tenant = "default",
    search: Annotated[str | None, typer.Option(help="part of an address")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    config: ConfigOption = None,
) -> None:
    from pipeline.control import suppressions

    _, engine, _ = _stores(config)
    rows = suppressions.search(engine, tenant, query=search, limit=limit)
    if as_json:
        print(json.dumps(rows, default=str))
        return
    for r in rows:
        console.print(
            f"{r['address']}  {r['scope'] or '(all mail)'}  {r['reason']}  {r['source']}  {r['created_at']:%Y-%m-%d %H:%M}"
        )


@app.command("add")
def add(
    address: str,
    tenant: Tenant = "default",
    scope: Scope = "",
    reason: Annotated[str, typer.Option(help="unsubscribe, hard_bounce, complaint, manual or import")] = "manual",
    config: ConfigOption = None,
) -> None:
    from pipeline.control import suppressions
    from pipeline.control.errors import ControlError

    _, engine, hot = _stores(config)
    try:
        new = suppressions.add(
            engine, hot, tenant, address, reason, scope=scope, actor="cli", tenant_id=_tenant_id(engine, tenant)
        )
    except ControlError as exc:
        _fail(exc)
    console.print("added" if new else "already suppressed")


@app.command("remove")
def remove(
    address: str,
    why: Annotated[str, typer.Option("--reason", help="why this address may receive mail again (audited)")],
    tenant: Tenant = "default",
    scope: Scope = "",
    config: ConfigOption = None,
) -> None:
    from pipeline.control import suppressions
    from pipeline.control.errors import ControlError

    _, engine, hot = _stores(config)
    try:
        suppressions.remove(engine, hot, tenant, address, why=why, scope=scope, actor="cli", tenant_id=_tenant_id(engine, tenant))
    except ControlError as exc:
        _fail(exc)
    console.print("removed")


@app.command("import")
def import_file(
    path: Path,
    tenant: Tenant = "default",
    reason: Annotated[str, typer.Option(help="for rows that name none")] = "import",
    as_json: Annotated[bool, typer.Option("--json")] = False,
    config: ConfigOption = None,
) -> None:
    """CSV rows `address[,list[,reason]]`; bad rows are reported with their line, good rows kept."""
    from pipeline.control import suppressions

    _, engine, hot = _stores(config)
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        report = suppressions.import_csv(engine, hot, tenant, handle, source=f"import:{path.name}"[:100], reason=reason)
    if as_json:
        print(json.dumps({"added": report.added, "already": report.already, "errors": report.errors}))
    else:
        console.print(f"added {report.added}, already suppressed {report.already}, bad rows {len(report.errors)}")
        for line in report.errors[:200]:
            err.print(line)
    if report.errors:
        raise typer.Exit(1)


@app.command("export")
def export_file(
    out: Annotated[Path, typer.Option("--out", "-o")], tenant: Tenant = "default", config: ConfigOption = None
) -> None:
    from pipeline.control import suppressions

    _, engine, _ = _stores(config)
    sink = sys.stdout.buffer if str(out) == "-" else out.open("wb")
    try:
        for chunk in suppressions.export_csv(engine, tenant):
            sink.write(chunk)
    finally:
        if sink is not sys.stdout.buffer:
            sink.close()


@app.command("rebuild")
def rebuild(
    tenant: Annotated[str | None, typer.Option("--tenant", "-t", help="all tenants when omitted")] = None,
    config: ConfigOption = None,
) -> None:
    """Reload the Redis hot index from the database (after a Redis loss)."""
    from pipeline.control import suppressions

    _, engine, hot = _stores(config)
    for slug in [tenant] if tenant else suppressions.tenants_with_suppressions(engine):
        console.print(f"{slug}: {suppressions.rebuild(engine, hot, slug)} entries")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="suppression")
