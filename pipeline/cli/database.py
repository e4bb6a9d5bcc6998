"""`mailpipe db upgrade|downgrade|current` and the schema check `serve` and `worker` run before starting."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from pipeline.cli.config_option import ConfigOption, load_or_exit
from pipeline.config import Config

app = typer.Typer(no_args_is_help=True, add_completion=False, help="The PostgreSQL schema (Alembic migrations).")
console = Console()
err = Console(stderr=True)


def database_url_or_exit(config: Config) -> str:
    url = config.database.resolved_url()
    if url is None:
        err.print("[red]error[/red] no database: set [database] url or MAILPIPE_DATABASE_URL")
        raise typer.Exit(2)
    return url


def require_schema_or_exit(config: Config) -> None:
    """Refuse to start on a schema behind the code (only when a database is configured)."""
    url = config.database.resolved_url()
    if url is None:
        return
    from pipeline.db.engine import DatabaseError, make_engine  # SQLAlchemy: only when a command needs the database
    from pipeline.db.schema_check import require_current_schema

    engine = make_engine(url)
    try:
        require_current_schema(engine)
    except DatabaseError as exc:
        err.print(f"[red]error[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    finally:
        engine.dispose()


@app.command("upgrade")
def upgrade(config: ConfigOption = None, revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    from pipeline.db import migrate
    from pipeline.db.engine import make_engine, safe_url

    url = database_url_or_exit(load_or_exit(config))
    engine = make_engine(url)
    migrate.upgrade(engine, revision)
    console.print(f"[green]ok[/green] {safe_url(url)} at revision {migrate.current_revision(engine)}")
    engine.dispose()


@app.command("downgrade")
def downgrade(config: ConfigOption = None, revision: Annotated[str, typer.Argument()] = "-1") -> None:
    """Undo migrations down to REVISION (default: one step)."""
    from pipeline.db import migrate
    from pipeline.db.engine import make_engine, safe_url

    url = database_url_or_exit(load_or_exit(config))
    engine = make_engine(url)
    migrate.downgrade(engine, revision)
    console.print(f"[green]ok[/green] {safe_url(url)} at revision {migrate.current_revision(engine) or '(empty)'}")
    engine.dispose()


@app.command("current")
def current(config: ConfigOption = None) -> None:
    """The database's revision and the code's newest one."""
    from pipeline.db.engine import DatabaseError, make_engine
    from pipeline.db.schema_check import schema_state

    url = database_url_or_exit(load_or_exit(config))
    engine = make_engine(url)
    try:
        state = schema_state(engine)
    except DatabaseError as exc:
        err.print(f"[red]error[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
    mark = "[green]up to date[/green]" if state.up_to_date else "[yellow]behind: run `mailpipe db upgrade`[/yellow]"
    console.print(f"current {state.current or '(empty)'}, head {state.head}: {mark}")
    raise typer.Exit(0 if state.up_to_date else 1)
