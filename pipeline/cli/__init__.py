"""The `mailpipe` command: one Typer app, one module per command group."""

from __future__ import annotations

import typer

from . import core

app = typer.Typer(no_args_is_help=True, add_completion=False, help="mailpipe: lead email through your own SMTP accounts.")
core.register(app)


def main() -> None:
    app()
