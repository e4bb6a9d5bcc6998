"""`mailpipe accounts …`: list the configured accounts, check one's connection. Never shows secrets."""

from __future__ import annotations

from typing import Annotated

import redis
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pipeline.cli.account_control import register as register_control
from pipeline.cli.core import ConfigOption, load_or_exit
from pipeline.cli.output import ScriptFriendlyConsole, print_json
from pipeline.cli.tenant_accounts import TENANT_HELP, list_stored, verify_stored
from pipeline.cli.tenant_accounts import register as register_tenant_commands
from pipeline.config import AccountConfig, Config, resolve_account
from pipeline.errors import MailpipeError, PluginError
from pipeline.limits.account_state import AccountState
from pipeline.models import normalise_address
from pipeline.plugin_host.manager import MailpipePluginManager, plugin_manager_for, preset_for
from pipeline.smtp.verify import DEFAULT_TIMEOUT, Report, verify

app = typer.Typer(no_args_is_help=True, add_completion=False, help="List accounts and check their connection.")
register_control(app)
register_tenant_commands(app)
console = ScriptFriendlyConsole()
err = Console(stderr=True)


def manager_or_exit(config: Config | None) -> MailpipePluginManager:
    try:
        return plugin_manager_for(config)
    except PluginError as exc:
        err.print(f"[red]error[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None


def endpoint(account: AccountConfig, pm: MailpipePluginManager) -> str:
    """host:port (security) after the preset, or why it cannot be worked out."""
    try:
        resolved = resolve_account(account.model_copy(update={"password": None}), preset_for(account, pm))
    except MailpipeError as exc:
        return f"invalid: {exc}"
    return f"{resolved.host}:{resolved.port} ({resolved.security})"


def health(config: Config, names: list[str], tenant: str) -> dict[str, str]:
    """Each account's health from Redis, or nothing when Redis cannot be reached."""
    client = redis.Redis.from_url(config.redis_url, socket_connect_timeout=0.5, socket_timeout=0.5)
    state = AccountState(client, tenant)
    out: dict[str, str] = {}
    try:
        for name in names:
            data = state.health(name)
            label = "paused" if data.get("paused") == "1" else data.get("health", "up")
            reason = data.get("reason")
            out[name] = f"{label} ({reason})" if reason and label != "up" else label
    except redis.RedisError:
        return {}
    finally:
        client.close()
    return out


@app.command("list")
def list_accounts(
    config: ConfigOption = None,
    tenant: Annotated[str, typer.Option("--tenant", help="tenant whose account state to read")] = "default",
    as_json: Annotated[bool, typer.Option("--json", help="print JSON (for scripts) instead of a table")] = False,
) -> None:
    """Names, provider, host:port, default flag and health of every account.

    On a deployment with a database, ``--tenant`` lists that tenant's accounts there, with their status.
    """
    loaded = load_or_exit(config)
    if tenant != "default" and loaded.database.resolved_url() is not None:
        return list_stored(tenant, config, as_json)
    pm = manager_or_exit(loaded)
    states = health(loaded, [a.name for a in loaded.accounts], tenant)
    default = loaded.default.account if loaded.default is not None else None
    if as_json:
        print_json(
            [
                {
                    "name": account.name,
                    "provider": account.provider,
                    "endpoint": endpoint(account, pm),
                    "default": account.name == default,
                    "health": states.get(account.name, "unknown"),
                }
                for account in loaded.accounts
            ]
        )
        return
    table = Table("name", "provider", "host:port", "default", "health", title="accounts")
    for account in loaded.accounts:
        table.add_row(
            account.name,
            account.provider,
            endpoint(account, pm),
            "yes" if account.name == default else "",
            states.get(account.name, "unknown"),
        )
    console.print(table)


def render(report: Report) -> None:
    table = Table("step", "result", "time", "detail", title=f"{report.account} · {report.provider} · {report.endpoint}")
    for row in report.steps:
        mark = Text("ok", style="green") if row.ok else Text("FAILED", style="bold red")
        took = "" if row.elapsed is None else f"{row.elapsed * 1000:.0f} ms"
        table.add_row(str(row.step), mark, took, Text(row.detail))
    console.print(table)
    failure = report.failure
    if failure is None:
        console.print(f"[green]ok[/green] {report.account} is ready to send")
        return
    if failure.reply:
        console.print(Text.assemble(("server replied: ", "bold"), failure.reply))
    for line in report.hints:
        console.print(Text.assemble(("hint: ", "yellow"), line))


@app.command("verify")
def verify_account(
    name: Annotated[str, typer.Argument(help="account name")],
    send_test: Annotated[
        str | None, typer.Option("--send-test", metavar="ADDRESS", help="also send a test message to ADDRESS")
    ] = None,
    config: ConfigOption = None,
    timeout: Annotated[float, typer.Option("--timeout", help="seconds to wait for each step")] = DEFAULT_TIMEOUT,
    tenant: Annotated[str | None, typer.Option("--tenant", "-t", help=TENANT_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="with --tenant: print JSON (for scripts)")] = False,
) -> None:
    """Check an account step by step: DNS, TCP, banner, EHLO, STARTTLS/TLS, AUTH. Exit 1 on failure."""
    if tenant is not None:
        return verify_stored(name, tenant, send_test, config, as_json)
    loaded = load_or_exit(config)
    try:
        account = loaded.account(name)
    except KeyError:
        known = ", ".join(a.name for a in loaded.accounts)
        err.print(f"[red]error[/red] no account named {name!r} (known: {known})", highlight=False)
        raise typer.Exit(2) from None
    if send_test is not None:
        try:
            send_test = normalise_address(send_test)
        except ValueError as exc:
            err.print(f"[red]error[/red] --send-test: {exc}", highlight=False)
            raise typer.Exit(2) from None
    report = verify(account, pm=manager_or_exit(loaded), send_test=send_test, timeout=timeout, redis_url=loaded.redis_url)
    render(report)
    raise typer.Exit(0 if report.ok else 1)
