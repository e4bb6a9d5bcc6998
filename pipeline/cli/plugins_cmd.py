"""`mailpipe providers` (the presets plugins supply) and `mailpipe plugins` (what is loaded, from where)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from pipeline.cli.accounts import manager_or_exit
from pipeline.cli.core import ConfigOption, load_or_exit
from pipeline.cli.output import ScriptFriendlyConsole, print_json
from pipeline.plugin_host.manager import presets
from pipeline.plugin_host.presets import Limits, ProviderPreset

console = ScriptFriendlyConsole()
err = Console(stderr=True)


def _optional_config(path: Path | None):  # type: ignore[no-untyped-def]
    """Config drop-ins count only when a config file is named: these commands work without one."""
    return load_or_exit(path) if path is not None else None


def format_limits(limits: Limits) -> str:
    parts = [
        f"{limits.per_second:g}/s" if limits.per_second else "",
        f"{limits.per_minute}/min" if limits.per_minute else "",
        f"{limits.per_hour}/h" if limits.per_hour else "",
        f"{limits.per_day:,}/day" if limits.per_day else "",
    ]
    return " ".join(p for p in parts if p) or "none"


def _details(preset: ProviderPreset) -> None:
    console.print(f"[bold]{preset.name}[/bold] — {preset.title}")
    rows = {
        "host": preset.host or "(set host)",
        "port / security": f"{preset.port} / {preset.security}",
        "username": preset.username or "(your login)",
        "auth": ", ".join(preset.auth_methods),
        "limits": format_limits(preset.limits),
        "max recipients": str(preset.max_recipients or "-"),
        "region": "required" if preset.requires_region else "-",
    }
    for key, value in rows.items():
        console.print(f"  {key:15} {value}", highlight=False)
    for note in preset.notes:
        console.print(f"  • {note}", highlight=False)


def providers(
    name: Annotated[str | None, typer.Argument(help="show one provider with its notes")] = None,
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON (for scripts) instead of a table")] = False,
) -> None:
    """The provider presets: host, port, security, username convention, auth, default limits."""
    known = presets(manager_or_exit(_optional_config(config)))
    if name is not None:
        if name not in known:
            err.print(f"[red]error[/red] no provider {name!r} (known: {', '.join(sorted(known))})", highlight=False)
            raise typer.Exit(2)
        if as_json:
            print_json(known[name].model_dump(mode="json"))
        else:
            _details(known[name])
        return
    if as_json:
        print_json([preset.model_dump(mode="json") for preset in sorted(known.values(), key=lambda p: p.name)])
        return
    table = Table("name", "title", "host", "port", "security", "username", "auth", "limits", "max rcpt", title="providers")
    for preset in sorted(known.values(), key=lambda p: p.name):
        table.add_row(
            preset.name,
            preset.title,
            preset.host or "-",
            str(preset.port),
            str(preset.security),
            preset.username or "",
            " ".join(preset.auth_methods),
            format_limits(preset.limits),
            str(preset.max_recipients or ""),
        )
    console.print(table)
    console.print(
        "Region variants (name@region) apply when an account sets region; name+option when it sets "
        "that option to true. `mailpipe providers NAME` shows the notes.",
        highlight=False,
    )


def plugins(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON (for scripts) instead of a table")] = False,
) -> None:
    """The loaded plugins: name, where each came from, which hooks it implements."""
    pm = manager_or_exit(_optional_config(config))
    if as_json:
        loaded = [
            {"name": p.name, "source": str(p.source), "origin": p.origin, "hooks": list(p.hooks), "loaded": True}
            for p in pm.loaded()
        ]
        skipped = [{"name": name, "loaded": False, "reason": reason} for name, reason in pm.skipped.items()]
        print_json(loaded + skipped)
        return
    table = Table("name", "source", "origin", "hooks", title="plugins")
    for plugin in pm.loaded():
        hooks = ", ".join(h.removeprefix("mailpipe_") for h in plugin.hooks)
        table.add_row(plugin.name, str(plugin.source), plugin.origin, hooks)
    console.print(table)
    for name, reason in pm.skipped.items():
        console.print(f"[yellow]not loaded[/yellow] {name}: {reason}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("providers")(providers)
    app.command("plugins")(plugins)
