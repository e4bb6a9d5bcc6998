"""The ``--config`` option every command takes, and loading the file it names (exit 2 on a bad one).

Kept apart from ``pipeline.cli.core`` so command modules (``database``, ``accounts``, …) can use it
without importing the core commands, which in turn import them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from pipeline.config import CONFIG_ENV, Config, load_config
from pipeline.errors import ConfigError

err = Console(stderr=True)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help=f"config file (default ${CONFIG_ENV} or ./mailpipe.toml)")
]


def load_or_exit(path: Path | None) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(f"[red]error[/red] {problem}", highlight=False)
        raise typer.Exit(2) from None
