"""`mailpipe config apply`: the config file's accounts, routes and default into the database (tenant `default`)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from pipeline.cli.config_option import ConfigOption, load_or_exit
from pipeline.cli.control_cmds import control_or_exit
from pipeline.errors import ConfigError

console = Console()
err = Console(stderr=True)


def config_apply(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON (for scripts) instead of text")] = False,
) -> None:
    """Upsert the file's accounts, routes and default as tenant `default`'s file-managed accounts (needs a database).

    Secrets are resolved from their references and stored encrypted. File-managed accounts no longer
    in the file are removed; accounts added through the API are left alone. Running it twice changes
    nothing; changes are audited with the actor `config-file`.
    """
    from pipeline.control.file_accounts import apply_file

    loaded = load_or_exit(config)
    ctx = control_or_exit(config)
    try:
        report = apply_file(ctx, loaded)
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(Text.assemble(("error ", "red"), problem))
        raise typer.Exit(2) from None
    finally:
        ctx.engine.dispose()
    if as_json:
        print(json.dumps({**vars(report), "changed": report.changed}))
        return
    for verb, names in (("created", report.created), ("updated", report.updated), ("removed", report.removed)):
        for name in names:
            console.print(f"[green]{verb}[/green] {name}")
    if report.routes_replaced:
        console.print("[green]routes replaced[/green]")
    if report.activated:
        console.print(f"[green]active account[/green] {report.activated}")
    summary = "changed" if report.changed else "nothing to change"
    console.print(f"ok: tenant default, {len(loaded.accounts)} declared accounts, {len(loaded.routes)} routes ({summary})")
