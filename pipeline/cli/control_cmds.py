"""`mailpipe tenants|keys|secrets …`: the control plane from the shell, through the API's service layer."""

from __future__ import annotations

import getpass
import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from pipeline.cli.config_option import ConfigOption, load_or_exit
from pipeline.control.errors import ControlError
from pipeline.control.scope_names import ALL_SCOPES
from pipeline.errors import ConfigError

if TYPE_CHECKING:  # the control plane (SQLAlchemy, verification, crypto) loads when a command uses it
    from pipeline.control.context import ControlContext
    from pipeline.control.scope import Principal, TenantScope

console = Console()
err = Console(stderr=True)
tenants_app = typer.Typer(no_args_is_help=True, add_completion=False, help="Tenants (the platform's customers).")
keys_app = typer.Typer(no_args_is_help=True, add_completion=False, help="Tenant API keys (mp_live_…).")
secrets_app = typer.Typer(no_args_is_help=True, add_completion=False, help="Master keys and data-key rotation.")
JsonFlag = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def cli_principal() -> Principal:
    from pipeline.control.scope import Principal

    return Principal(actor=f"cli:{getpass.getuser()}", admin=True)


def control_or_exit(config_path: object) -> ControlContext:
    from pipeline.control.build import control_context

    loaded = load_or_exit(config_path)  # type: ignore[arg-type]
    try:
        ctx = control_context(loaded)
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(f"[red]error[/red] {problem}", highlight=False)
        raise typer.Exit(2) from None
    if ctx is None:
        err.print("[red]error[/red] no database: set [database] url or MAILPIPE_DATABASE_URL")
        raise typer.Exit(2)
    return ctx


def scope_or_exit(ctx: ControlContext, tenant: str) -> TenantScope:
    from pipeline.control.scope import resolve_scope

    try:
        with ctx.transaction() as session:
            return resolve_scope(session, cli_principal(), tenant)
    except ControlError as exc:
        err.print(f"[red]error[/red] {exc.detail}")
        raise typer.Exit(1) from None


@tenants_app.command("list")
def tenants_list(config: ConfigOption = None, as_json: JsonFlag = False) -> None:
    from pipeline.control import tenants

    ctx = control_or_exit(config)
    rows, after = [], None
    while True:
        page = tenants.list_tenants(ctx, cli_principal(), after=after, limit=500)
        rows += page.tenants
        if page.next_cursor is None:
            break
        after = page.next_cursor
    if as_json:
        print(json.dumps([t.model_dump(mode="json") for t in rows]))
        return
    table = Table("tenant", "display name", "accounts", "created", title="tenants")
    for t in rows:
        table.add_row(t.tenant, t.display_name or "", str(t.accounts), t.created_at.isoformat(timespec="seconds"))
    console.print(table)


@tenants_app.command("create")
def tenants_create(tenant: str, display_name: Annotated[str | None, typer.Option()] = None, config: ConfigOption = None) -> None:
    from pipeline.control import tenants
    from pipeline.control.schemas import TenantIn

    ctx = control_or_exit(config)
    out, created = tenants.put_tenant(ctx, cli_principal(), tenant, TenantIn(display_name=display_name))
    console.print(f"[green]{'created' if created else 'updated'}[/green] {out.tenant}")


@tenants_app.command("delete")
def tenants_delete(tenant: str, yes: Annotated[bool, typer.Option("--yes")] = False, config: ConfigOption = None) -> None:
    """Delete a tenant, its accounts, routes, keys and data key (its secrets become unreadable)."""
    from pipeline.control import tenants

    if not yes:
        err.print("add --yes: this deletes the tenant and destroys its data key")
        raise typer.Exit(2)
    ctx = control_or_exit(config)
    scope_or_exit(ctx, tenant)
    tenants.delete_tenant(ctx, cli_principal(), tenant)
    console.print(f"[green]deleted[/green] {tenant}")


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Option("--tenant", "-t")],
    scope: Annotated[list[str], typer.Option("--scope", help=f"repeatable: {', '.join(ALL_SCOPES)}")],
    name: Annotated[str | None, typer.Option()] = None,
    config: ConfigOption = None,
) -> None:
    """Issue a key; it is printed once and stored only as a hash."""
    from pipeline.control import keys
    from pipeline.control.schemas import KeyIn

    ctx = control_or_exit(config)
    created = keys.create_key(ctx, scope_or_exit(ctx, tenant), KeyIn(name=name, scopes=scope))
    err.print(f"key {created.key_id} for {tenant} ({', '.join(created.scopes)}); shown once:")
    print(created.key)


@keys_app.command("list")
def keys_list(
    tenant: Annotated[str, typer.Option("--tenant", "-t")], config: ConfigOption = None, as_json: JsonFlag = False
) -> None:
    from pipeline.control import keys

    ctx = control_or_exit(config)
    listed = keys.list_keys(ctx, scope_or_exit(ctx, tenant)).keys
    if as_json:
        print(json.dumps([k.model_dump(mode="json") for k in listed]))
        return
    table = Table("key id", "prefix", "name", "scopes", "revoked", title=f"keys of {tenant}")
    for k in listed:
        table.add_row(k.key_id, k.prefix, k.name or "", ", ".join(k.scopes), str(k.revoked_at or ""))
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str, tenant: Annotated[str, typer.Option("--tenant", "-t")], config: ConfigOption = None) -> None:
    from pipeline.control import keys

    ctx = control_or_exit(config)
    try:
        keys.revoke_key(ctx, scope_or_exit(ctx, tenant), key_id)
    except ControlError as exc:
        err.print(f"[red]error[/red] {exc.detail}")
        raise typer.Exit(1) from None
    console.print(f"[green]revoked[/green] {key_id}")


@secrets_app.command("rotate")
def secrets_rotate(config: ConfigOption = None) -> None:
    """Rewrap every tenant data key under the first of [secrets] master_keys (online; then retire the old key)."""
    from pipeline.control.rotation import rotate_data_keys

    ctx = control_or_exit(config)
    count = rotate_data_keys(ctx)
    console.print(f"[green]ok[/green] {count} data keys rewrapped under master key {ctx.keyring.current.key_id}")


@secrets_app.command("new-master-key")
def secrets_new_master_key() -> None:
    """Print a fresh master key (base64, 32 bytes): store it where [secrets] master_keys references it."""
    from pipeline.control.crypto import new_master_key

    print(new_master_key())


def register(app: typer.Typer) -> None:
    app.add_typer(tenants_app, name="tenants")
    app.add_typer(keys_app, name="keys")
    app.add_typer(secrets_app, name="secrets")
